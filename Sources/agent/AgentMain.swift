import ArgumentParser
import Foundation
import PinholeCommands

// The agent executable; what it does lives in PinholeCommands. `agent istio …` is
// dispatched by hand rather than as a subcommand: both share the Istio flags, and
// ArgumentParser would give them to the parent first.
@main
enum AgentMain {
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == "istio" {
            IstioCommand.main(Array(arguments.dropFirst()))
        } else {
            await AgentCommand.main(arguments)
        }
    }
}
