/// Where a route stands in its migration.
public enum Stage: String, Sendable, CaseIterable, Comparable {
    /// The monolith answers; the service is being built.
    case transform
    /// Both run: one answers, the other gets a shadow copy, and the answers are compared.
    case coexist
    /// The extracted service answers alone.
    case eliminate

    public static func < (lhs: Stage, rhs: Stage) -> Bool {
        Self.allCases.firstIndex(of: lhs)! < Self.allCases.firstIndex(of: rhs)!
    }

    /// The next stage forward, if any.
    public var next: Stage? {
        switch self {
        case .transform: .coexist
        case .coexist: .eliminate
        case .eliminate: nil
        }
    }

    /// The previous stage, if any.
    public var previous: Stage? {
        switch self {
        case .transform: nil
        case .coexist: .transform
        case .eliminate: .coexist
        }
    }
}
