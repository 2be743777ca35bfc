import Foundation
import StranglerCommands

/// The executable's entry point: `Strangler`'s commands; usage errors exit with 2 (see `Strangler.execute`).
@main
enum StranglerMain {
    static func main() async {
        UpParent.watch()
        exit(await Strangler.execute(Array(CommandLine.arguments.dropFirst())))
    }
}
