import ArgumentParser
import StranglerCommands

/// The executable's entry point: `Strangler`'s commands, run by ArgumentParser's asynchronous `main()`.
@main
struct StranglerMain: AsyncParsableCommand {
    static let configuration = Strangler.configuration
}
