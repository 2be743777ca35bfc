import HTTP1

/// Whether a route may move from one stage to another, on its evidence: every reason it may not.
///
/// ```swift
/// let verdict = Gates.evaluate(route: route, to: .eliminate, evidence: evidence, policy: table.gates)
/// verdict.allowed    // false
/// verdict.reasons    // ["312 compared samples since 2026-11-28T10:00:00Z, needs 1000", …]
/// ```
public enum Gates {
    /// The outcome of the gates for one move.
    public struct Verdict: Sendable, Equatable {
        public var route: String
        public var from: Stage
        public var to: Stage
        /// Every reason the move is refused; empty when it is allowed.
        public var reasons: [String]
        /// Gates that did not block because the application declares nothing to measure them with: `no syncLag
        /// probe declared for orders` (shown as "not measured: …").
        public var notMeasured: [String]

        public var allowed: Bool { self.reasons.isEmpty }

        public init(route: String, from: Stage, to: Stage, reasons: [String], notMeasured: [String] = []) {
            self.route = route
            self.from = from
            self.to = to
            self.reasons = reasons
            self.notMeasured = notMeasured
        }
    }

    /// Whether a method writes: anything but GET, HEAD and OPTIONS (as for shadowing; `HTTPMethodRules`).
    public static func isWrite(_ method: String) -> Bool { HTTPMethodRules.isWrite(method) }

    /// The gates of a move. A skip forward (transform → eliminate) must pass the gates of both steps; moving back
    /// from coexist to transform is always allowed; leaving eliminate passes the rollback gate.
    public static func evaluate(route: Route, to target: Stage, evidence: RouteEvidence, policy: GatePolicy) -> Verdict
    {
        var findings = Findings()
        let from = route.stage
        if from < target {
            if from == .transform {
                self.coexist(route: route, evidence: evidence, policy: policy.coexist, into: &findings)
            }
            if target == .eliminate {
                self.eliminate(route: route, evidence: evidence, policy: policy.eliminate, into: &findings)
            }
        } else if from == .eliminate, target < from {
            self.rollback(route: route, evidence: evidence, policy: policy.rollback, into: &findings)
        }
        return Verdict(
            route: route.id, from: from, to: target, reasons: findings.reasons, notMeasured: findings.notMeasured)
    }

    /// The verdict of a route's next move (transform → coexist, coexist → eliminate); nil when it has none: in
    /// eliminate already, or without a service (it stays with the monolith). What `strangler routes`, `GET
    /// /admin/evidence` and `strangler report` show.
    public static func next(route: Route, evidence: RouteEvidence, policy: GatePolicy) -> Verdict? {
        guard let next = route.stage.next, route.service != nil else { return nil }
        return self.evaluate(route: route, to: next, evidence: evidence, policy: policy)
    }

    /// What the gates of a move found: reasons to refuse it, and gates with nothing to measure (each once, in the
    /// order found).
    struct Findings {
        private(set) var reasons: [String] = []
        private(set) var notMeasured: [String] = []

        mutating func refuse(_ reason: String) {
            if !self.reasons.contains(reason) { self.reasons.append(reason) }
        }

        /// Whether the service declares none of `probe`; if so, that is noted: `no health probe declared for orders`.
        mutating func undeclared(_ probe: String, _ evidence: RouteEvidence, service: String) -> Bool {
            guard evidence.undeclared.contains(probe) else { return false }
            let note =
                probe == "entities"
                ? "no entities declared for \(service) to reconcile" : "no \(probe) probe declared for \(service)"
            if !self.notMeasured.contains(note) { self.notMeasured.append(note) }
            return true
        }
    }

    static func coexist(
        route: Route, evidence: RouteEvidence, policy: GatePolicy.Coexist, into findings: inout Findings
    ) {
        guard let service = route.service else { return }
        if policy.health, !findings.undeclared("health", evidence, service: service),
            case .failed(let why) = evidence.health
        {
            findings.refuse("service \(service) is not healthy: \(why)")
        }
        self.lag(evidence: evidence, maxLag: policy.maxSyncLag, service: service, into: &findings)
    }

    static func eliminate(
        route: Route, evidence: RouteEvidence, policy: GatePolicy.Eliminate, into findings: inout Findings
    ) {
        let since = evidence.since.map { "since \($0)" } ?? "so far"
        if evidence.compared < policy.minSamples {
            findings.refuse("\(evidence.compared) compared samples \(since), needs \(policy.minSamples)")
        }
        if evidence.compared > 0 {
            let lower = Wilson.lowerBound(
                successes: evidence.acceptedMatches, trials: evidence.compared, confidence: policy.confidence)
            if lower < policy.minMatchRate {
                findings.refuse(
                    "match rate \(Self.percent(Double(evidence.acceptedMatches) / Double(evidence.compared))) of "
                        + "\(evidence.compared): "
                        + "its \(Self.percent(policy.confidence, digits: 0)) lower bound \(Self.percent(lower)) is "
                        + "under \(Self.percent(policy.minMatchRate))"
                )
            }
        } else if policy.minSamples == 0, policy.minMatchRate > 0 {
            findings.refuse("no compared samples \(since): no match rate")
        }
        if policy.triage {
            let untriaged = evidence.untriaged
            if !untriaged.isEmpty {
                let listed = untriaged.prefix(3).map { "\($0.id) (\($0.text), \($0.count)×)" }.joined(separator: "; ")
                findings.refuse(
                    "\(untriaged.count) untriaged mismatch signature\(untriaged.count == 1 ? "" : "s"): "
                        + "\(listed)\(untriaged.count > 3 ? "; …" : "")"
                )
            }
        }
        if let service = route.service {
            self.lag(evidence: evidence, maxLag: policy.maxSyncLag, service: service, into: &findings)
            if policy.maxSyncLag != nil, evidence.syncLag != nil, let problem = evidence.syncProblem {
                findings.refuse("service \(service)'s sync reports an error: \(problem)")
            }
            let reconcileHint = evidence.reconcileCommand ?? "strangler reconcile \(service)"
            if policy.reconcile, !findings.undeclared("entities", evidence, service: service) {
                switch evidence.reconcile {
                case .none:
                    findings.refuse("service \(service) was never reconciled (run: \(reconcileHint))")
                case .some(let record) where !record.clean:
                    findings.refuse("the last reconcile of \(service) (\(record.at)) was not clean: \(record.summary)")
                case .some(let record):
                    if let maxAge = policy.reconcileMaxAge, let age = record.age, age > maxAge {
                        findings.refuse(
                            "the last reconcile of \(service) (\(record.at)) is older than "
                                + "\(Self.formatAge(maxAge)) (run: \(reconcileHint))"
                        )
                    }
                }
            }
        }
        if self.isWrite(route.method) {
            if policy.dryRun, evidence.compared == 0 {
                let hint = route.shadow?.writes == .dryRun ? "" : " (set shadow.writes to \"dry-run\")"
                findings.refuse("write route with no dry-run comparisons \(since)\(hint)")
            }
            if policy.reverseSync { self.reverseSync(route: route, evidence: evidence, into: &findings) }
        }
    }

    /// `24h`, `90m`, `45s`.
    static func formatAge(_ age: Duration) -> String {
        let seconds = age.components.seconds
        if seconds >= 3600, seconds % 3600 == 0 { return "\(seconds / 3600)h" }
        if seconds >= 60, seconds % 60 == 0 { return "\(seconds / 60)m" }
        return DurationText.format(age)
    }

    static func rollback(
        route: Route, evidence: RouteEvidence, policy: GatePolicy.Rollback, into findings: inout Findings
    ) {
        guard self.isWrite(route.method), policy.reverseSync else { return }
        self.reverseSync(route: route, evidence: evidence, into: &findings)
    }

    static func lag(evidence: RouteEvidence, maxLag: Int?, service: String, into findings: inout Findings) {
        guard let maxLag, !findings.undeclared("syncLag", evidence, service: service) else { return }
        guard let lag = evidence.syncLag else {
            findings.refuse("service \(service)'s sync lag is unknown: \(evidence.syncProblem ?? "not checked")")
            return
        }
        if lag > maxLag {
            findings.refuse("service \(service) is \(lag) events behind the monolith (at most \(maxLag) allowed)")
        }
    }

    static func reverseSync(route: Route, evidence: RouteEvidence, into findings: inout Findings) {
        let service = route.service ?? "?"
        guard !findings.undeclared("reverseSync", evidence, service: service) else { return }
        switch evidence.reverseSync {
        case .ok: break
        case .failed(let why): findings.refuse("reverse sync of \(service) into the monolith is not running: \(why)")
        case .notChecked: findings.refuse("reverse sync of \(service) into the monolith was not checked")
        }
    }

    /// `99.95%`; shares under 100% never round up to it.
    public static func percent(_ share: Double, digits: Int = 2) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let value = (share * 100 * scale).rounded(.down) / scale
        var text = String(value)
        if digits == 0, text.hasSuffix(".0") { text.removeLast(2) }
        if digits > 0, let dot = text.firstIndex(of: ".") {
            let decimals = text.distance(from: dot, to: text.endIndex) - 1
            if decimals < digits { text += String(repeating: "0", count: digits - decimals) }
        }
        return text + "%"
    }
}

/// The Wilson score interval of a binomial proportion: how low the true match rate may be, given `successes` out of
/// `trials`, at a confidence level. Unlike the raw ratio it rewards more evidence: 100 of 100 gives 96.3% at 95%,
/// 5,000 of 5,000 gives 99.92%.
public enum Wilson {
    /// The interval's lower bound (two-sided, so 0.95 uses z = 1.96); 0 without trials.
    public static func lowerBound(successes: Int, trials: Int, confidence: Double) -> Double {
        guard trials > 0 else { return 0 }
        let n = Double(trials)
        let p = Double(min(max(successes, 0), trials)) / n
        let z = self.normalQuantile(1 - (1 - confidence) / 2)
        let z2 = z * z
        let centre = p + z2 / (2 * n)
        let margin = z * ((p * (1 - p) + z2 / (4 * n)) / n).squareRoot()
        return max(0, (centre - margin) / (1 + z2 / n))
    }

    /// The interval's upper bound (two-sided); 1 without trials.
    public static func upperBound(successes: Int, trials: Int, confidence: Double) -> Double {
        guard trials > 0 else { return 1 }
        // The upper bound of p is one minus the lower bound of the failures' share.
        return 1
            - self.lowerBound(
                successes: trials - min(max(successes, 0), trials), trials: trials, confidence: confidence)
    }

    /// The standard normal distribution's quantile (Acklam's rational approximation, relative error under 1.2e-9).
    public static func normalQuantile(_ p: Double) -> Double {
        precondition(p > 0 && p < 1)
        let a = [
            -3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
            -3.066479806614716e+01, 2.506628277459239e+00,
        ]
        let b = [
            -5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
            -1.328068155288572e+01,
        ]
        let c = [
            -7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
            4.374664141464968e+00, 2.938163982698783e+00,
        ]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        let low = 0.02425
        if p < low {
            let q = (-2 * self.naturalLog(p)).squareRoot()
            return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        if p > 1 - low { return -self.normalQuantile(1 - p) }
        let q = p - 0.5
        let r = q * q
        return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    }

    /// ln(x) for x > 0 without Foundation: x = m·2^e with m in [1, 2), ln m = 2·atanh((m − 1)/(m + 1)).
    static func naturalLog(_ x: Double) -> Double {
        let m = x.significand
        let t = (m - 1) / (m + 1)
        let t2 = t * t
        var term = t
        var sum = 0.0
        var k = 1.0
        while abs(term / k) > 1e-17 {
            sum += term / k
            term *= t2
            k += 2
        }
        return Double(x.exponent) * 0.693_147_180_559_945_3 + 2 * sum
    }
}
