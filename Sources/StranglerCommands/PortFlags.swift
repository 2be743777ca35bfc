import ArgumentParser

/// The check every command that listens makes of its port flags.
enum PortFlags {
    /// Refuses the first flag whose value is outside `range` (0 lets the system choose a port; `up` needs real ones).
    static func validate(_ flags: [(name: String, value: Int)], in range: ClosedRange<Int> = 0...65535) throws {
        for (name, value) in flags where !range.contains(value) {
            throw ValidationError("\(name) must be from \(range.lowerBound) to \(range.upperBound), not \(value)")
        }
    }
}
