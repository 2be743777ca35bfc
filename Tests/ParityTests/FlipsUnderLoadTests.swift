import Diff
import Foundation
import JSON
import RouteTable
import StranglerTesting
import Synchronization
import Testing

/// While clients write and read through the proxy, the contacts routes flip transform → coexist → eliminate →
/// coexist → transform many times (forced: the gates would rightly refuse a move with no evidence). Feed sync and
/// reverse sync run in the background, as in production.
@Suite("Flips under load")
struct FlipsUnderLoadTests {
    /// One request a client sent, when, and who answered it.
    struct Sent: Sendable {
        var method: String
        var target: String
        var started: ContinuousClock.Instant
        var ended: ContinuousClock.Instant
        var status: Int?
        /// The `Server` header: `strangler-monolith` or `strangler-contacts`.
        var server: String?
        var error: String?
    }

    /// What a client made and was told was done.
    struct Acknowledged: Sendable {
        /// Contact id → its e-mail address and last acknowledged title (nil when it has none).
        var created: [String: (email: String, title: String?)] = [:]
        var deleted: Set<String> = []
        var conflicts = 0
        var notYetThere = 0
    }

    struct Flip: Sendable {
        var stage: Stage
        var started: ContinuousClock.Instant
        var ended: ContinuousClock.Instant
    }

    enum Outcome: Sendable {
        case client([Sent], Acknowledged)
        case flips([Flip])
    }

    static let workers = 4
    static let cycles = 5

    @Test func noAcknowledgedWriteIsLostAndNoRequestFailsWhileRoutesFlip() async throws {
        try await Stack.run(backgroundSync: true) { stack in
            let ids = try await SampleData.create(on: stack.monolith)
            try await stack.settle()
            let account = ids["acme"]!
            let progress = Progress()

            // The clients: each on one kept-alive connection to the proxy (reopened if the proxy closes it), each
            // writing and reading only its own contacts, with If-Match on every change (a side that has not seen the
            // last acknowledged version refuses with 409 instead of losing it).
            let results = try await withThrowingTaskGroup(of: Outcome.self) { group in
                for worker in 0..<Self.workers {
                    group.addTask {
                        let (sent, own) = try await Self.client(
                            worker, account: account, proxy: stack.proxy, progress: progress)
                        return .client(sent, own)
                    }
                }
                group.addTask {
                    // The flipper: after each flip, wait until the clients had a few answers each in the new stage.
                    var flips: [Flip] = []
                    let sequence: [Stage] = [.coexist, .eliminate, .coexist, .transform]
                    for _ in 0..<Self.cycles {
                        for stage in sequence {
                            let started = ContinuousClock.now
                            try await stack.admin.stage(
                                "contacts.*", to: stage, reason: "flips under load", force: true)
                            flips.append(Flip(stage: stage, started: started, ended: .now))
                            let target = progress.answered.withLock { $0 } + Self.workers * 5
                            let deadline = ContinuousClock.now + .seconds(10)
                            while progress.answered.withLock({ $0 }) < target, ContinuousClock.now < deadline {
                                try await Task.sleep(for: .milliseconds(2))
                            }
                        }
                    }
                    progress.done.withLock { $0 = true }
                    return .flips(flips)
                }
                var results: [Outcome] = []
                for try await result in group { results.append(result) }
                return results
            }
            var flips: [Flip] = []
            var outcomes: [([Sent], Acknowledged)] = []
            for result in results {
                switch result {
                case .flips(let timeline): flips = timeline
                case .client(let sent, let own): outcomes.append((sent, own))
                }
            }
            let sent = outcomes.flatMap(\.0)
            var acknowledged = Acknowledged()
            for (_, own) in outcomes {
                acknowledged.created.merge(own.created) { first, _ in first }
                acknowledged.deleted.formUnion(own.deleted)
                acknowledged.conflicts += own.conflicts
                acknowledged.notYetThere += own.notYetThere
            }

            // No 5xx, no failed exchange.
            let failures = sent.filter { ($0.status ?? 500) >= 500 }
            let shown = failures.prefix(10).map {
                "\($0.method) \($0.target): \($0.status.map(String.init) ?? $0.error ?? "?")"
            }
            #expect(failures.isEmpty, "\(shown)")

            // No request saw half a table: every request that started after a flip was acknowledged and ended before
            // the next began was answered by the side its stage names, whichever contacts route it took.
            var windows: [(from: ContinuousClock.Instant?, to: ContinuousClock.Instant?, stage: Stage)] = []
            windows.append((nil, flips.first?.started, .transform))
            for (index, flip) in flips.enumerated() {
                windows.append((flip.ended, index + 1 < flips.count ? flips[index + 1].started : nil, flip.stage))
            }
            var judged = 0
            var wrongSide: [String] = []
            for request in sent where request.status != nil {
                guard
                    let window = windows.first(where: {
                        ($0.from.map { request.started >= $0 } ?? true) && ($0.to.map { request.ended <= $0 } ?? true)
                    })
                else { continue }
                judged += 1
                let expected = window.stage == .eliminate ? "strangler-contacts" : "strangler-monolith"
                if request.server != expected {
                    wrongSide.append(
                        "\(request.method) \(request.target) in \(window.stage.rawValue) answered by "
                            + "\(request.server ?? "nobody")"
                    )
                }
            }
            #expect(wrongSide.isEmpty, "\(wrongSide.prefix(10))")
            #expect(
                judged >= flips.count * Self.workers,
                "too few requests fell between flips to judge: \(judged) of \(sent.count)")

            // Every acknowledged write exists exactly once where it belongs, on both sides once sync and reverse sync
            // have caught up: created contacts with their last acknowledged title, deleted ones gone; the two lists
            // equal.
            try await stack.settle()
            let monolith = try await Self.allContacts(at: stack.monolith)
            let service = try await Self.allContacts(at: stack.service("contacts").endpoint)
            #expect(
                monolith.map(\.jsonText) == service.map(\.jsonText), "the monolith and the service disagree after sync")
            for (side, contacts) in [("monolith", monolith), ("service", service)] {
                var count: [String: Int] = [:]
                for contact in contacts { count[contact["id"]?.stringValue ?? "", default: 0] += 1 }
                let byEmail = Dictionary(grouping: contacts, by: { $0["email"]?.stringValue ?? "" })
                #expect(byEmail.values.allSatisfy { $0.count == 1 }, "\(side): an e-mail address twice")
                for (id, expected) in acknowledged.created {
                    let present = count[id] ?? 0
                    if acknowledged.deleted.contains(id) {
                        #expect(present == 0, "\(side): deleted \(id) still there")
                    } else {
                        #expect(present == 1, "\(side): \(id) (\(expected.email)) there \(present) times")
                        let contact = contacts.first { $0["id"]?.stringValue == id }
                        #expect(
                            contact?["title"]?.stringValue == expected.title,
                            """
                            \(side): \(id) title \(contact?["title"]?.jsonText ?? "?"), acknowledged \
                            \(expected.title ?? "null")
                            """
                        )
                    }
                }
            }

            let writes = sent.filter { $0.method != "GET" && ($0.status.map { (200..<300).contains($0) } ?? false) }
                .count
            let errors = failures.count
            print(
                "flips under load: \(sent.count) requests, \(writes) acknowledged writes "
                    + "(\(acknowledged.created.count) contacts created, "
                    + "\(acknowledged.deleted.count) deleted), \(flips.count) flips, \(errors) errors (5xx or failed), "
                    + "\(acknowledged.conflicts) refused "
                    + "with 409 (a side behind the acknowledged version), \(acknowledged.notYetThere) answered 404 for "
                    + "a contact not synced yet, "
                    + "\(judged) requests between flips all answered by their stage's side")
        }
    }

    /// One client: create, read, change (If-Match) and sometimes delete its own contacts until `done`.
    static func client(
        _ worker: Int, account: String, proxy: HTTPEndpoint, progress: Progress
    ) async throws -> ([Sent], Acknowledged) {
        var sent: [Sent] = []
        var own = Acknowledged()
        var versions: [String: Int] = [:]
        var sequence = 0
        let client = HTTPTestClient(timeout: .seconds(10))
        while !progress.done.withLock({ $0 }) {
            try await client.withConnection(to: proxy) { connection in
                func send(
                    _ method: String, _ target: String, _ body: String? = nil,
                    headers: [(name: String, value: String)] = []
                ) async -> HTTPAnswer? {
                    let request = HTTPRequestData(
                        method: method, target: target,
                        headers: headers + (body == nil ? [] : [("Content-Type", "application/json")]),
                        body: Array((body ?? "").utf8))
                    let started = ContinuousClock.now
                    do {
                        let answer = try await connection.send(request)
                        sent.append(
                            Sent(
                                method: method, target: target, started: started, ended: .now, status: answer.status,
                                server: answer.header("Server")))
                        progress.answered.withLock { $0 += 1 }
                        return answer
                    } catch {
                        sent.append(
                            Sent(method: method, target: target, started: started, ended: .now, error: "\(error)"))
                        return nil
                    }
                }
                while !progress.done.withLock({ $0 }), !connection.isClosed {
                    sequence += 1
                    let email = "load-\(worker)-\(sequence)@acme.example.com"
                    guard
                        let created = await send(
                            "POST", "/contacts",
                            #"{"accountId":"\#(account)","firstName":"Load","lastName":"W\#(worker)","#
                                + #""email":"\#(email)"}"#
                        )
                    else { continue }
                    guard created.status == 201, let id = created.json?["id"]?.stringValue else { continue }
                    own.created[id] = (email, nil)
                    versions[id] = 1
                    _ = await send("GET", "/contacts?limit=5")
                    // Change one of its contacts: the newest, or an older one now and then.
                    let live = own.created.keys.filter { !own.deleted.contains($0) }.sorted()
                    let target = sequence % 3 == 0 ? (live.first ?? id) : id
                    let title = "T\(worker)-\(sequence)"
                    if let answer = await send(
                        "PATCH", "/contacts/\(target)", #"{"title":"\#(title)"}"#,
                        headers: [("If-Match", String(versions[target]!))])
                    {
                        switch answer.status {
                        case 200:
                            own.created[target]?.title = title
                            versions[target] = Int(answer.json?["version"]?.numberValue ?? 0)
                        case 409: own.conflicts += 1
                        case 404: own.notYetThere += 1
                        default: break
                        }
                    }
                    if let read = await send("GET", "/contacts/\(target)"), read.status == 404 { own.notYetThere += 1 }
                    if sequence % 5 == 0,
                        let answer = await send(
                            "DELETE", "/contacts/\(id)", headers: [("If-Match", String(versions[id]!))])
                    {
                        switch answer.status {
                        case 204: own.deleted.insert(id)
                        case 409: own.conflicts += 1
                        case 404: own.notYetThere += 1
                        default: break
                        }
                    }
                }
            }
        }
        return (sent, own)
    }

    /// Every contact a side has, page by page.
    static func allContacts(at endpoint: HTTPEndpoint) async throws -> [JSONValue] {
        var contacts: [JSONValue] = []
        var after: String?
        repeat {
            let page = try await HTTPTestClient().json(
                "GET", "/contacts?limit=200" + (after.map { "&after=\($0)" } ?? ""), to: endpoint, status: 200)
            contacts += page["items"]?.arrayValue ?? []
            after = page["next"]?.stringValue
        } while after != nil
        return contacts
    }
}

/// Shared between the clients and the flipper: whether to stop, and how many answers came in.
final class Progress: Sendable {
    let done = Mutex(false)
    let answered = Mutex(0)
}
