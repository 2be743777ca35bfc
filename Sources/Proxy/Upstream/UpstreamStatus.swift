import Foundation
public import JSON
import NIOCore
import RouteTable
import Synchronization

extension RouteTableStore {
    /// Every group of the live table with what the proxy observes of each instance now (`GET /admin/status`,
    /// `strangler routes`): `[{ name, kind, balance, health, instances: [{ url, tls, insecure, healthy, ejected:
    /// { until, why } | null, inFlight, openConnections, pending, errors, ejections, healthTransitions, lastCheck }] }]`.
    public func upstreamStatus() -> JSONValue {
        let snapshot = self.snapshot
        let now = NIODeadline.now().uptimeNanoseconds
        let formatter = ISO8601DateFormatter()
        return .array(
            snapshot.balancers.map { name, balancer in
                balancer.group.json(
                    name: name,
                    instances: balancer.instances.map { state in
                        let record = state.record.withLock { $0 }
                        let until = state.ejectedUntil.load(ordering: .relaxed)
                        var ejected: JSONValue = .null
                        if until > now {
                            let at = Date().addingTimeInterval(Double(until - now) / 1e9)
                            ejected = .object([
                                ("until", .string(formatter.string(from: at))),
                                ("why", record.ejectedWhy.map(JSONValue.string) ?? .null),
                            ])
                        }
                        func count(_ value: borrowing Atomic<Int>) -> JSONValue {
                            .number(Double(value.load(ordering: .relaxed)))
                        }
                        return .object(
                            state.upstream.configurationMembers + [
                                ("healthy", .bool(state.healthy.load(ordering: .relaxed))),
                                ("unhealthyWhy", record.unhealthyWhy.map(JSONValue.string) ?? .null),
                                ("ejected", ejected), ("inFlight", count(state.inFlight)),
                                ("openConnections", count(state.openConnections)), ("pending", count(state.pending)),
                                ("errors", count(state.errors)), ("ejections", count(state.ejections)),
                                ("healthTransitions", count(state.healthTransitions)),
                                ("lastCheck", record.lastCheck.map(JSONValue.string) ?? .null),
                            ])
                    })
            })
    }
}
