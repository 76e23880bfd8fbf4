import ArgumentParser

/// The message ArgumentParser would print for `arguments` given to `command`, or nil if
/// they are accepted.
func parseError<Command: ParsableCommand>(_ command: Command.Type, _ arguments: [String]) -> String? {
    do {
        _ = try command.parseAsRoot(arguments)
        return nil
    } catch {
        return command.message(for: error)
    }
}
