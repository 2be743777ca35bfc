import ArgumentParser
import StranglerCommands

// `AsyncParsableCommand` has both a synchronous and an asynchronous `main()`; name the asynchronous one.
let main: () async -> Void = Strangler.main
await main()
