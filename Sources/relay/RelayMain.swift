import ArgumentParser
import PinholeCommands

// The relay executable; everything it does lives in `RelayCommand` (PinholeCommands).
@main
extension RelayCommand {}
