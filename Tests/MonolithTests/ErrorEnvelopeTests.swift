import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

@testable import Monolith

@Suite("Client mistakes get the error envelope, never a 500, and write nothing")
struct ErrorEnvelopeTests {
    @Test func malformedJSONIs400() async throws {
        try await withMonolith { client, store in
            let answer = try await client.send(.post, "/accounts", json: #"{"name": "Acme""#)
            #expect(answer.status == .badRequest)
            #expect(answer.errorCode == "malformed_json")
            #expect((answer.error["message"] as? String)?.isEmpty == false)
            #expect(try await store.eventCount() == 0)
        }
    }

    @Test func wrongTypesAndMissingFieldsAre422WithEveryField() async throws {
        try await withMonolith { client, store in
            let answer = try await client.send(
                .post, "/contacts",
                json: #"{"firstName":42,"email":"not-an-address","tags":"vip","nickname":"x","id":"con_1"}"#)
            #expect(answer.status == .unprocessableContent)
            #expect(answer.errorCode == "validation_failed")
            #expect(answer.errorFields["firstName"] == "must be a string, not number")
            #expect(answer.errorFields["email"] == "must be a valid address")
            #expect(answer.errorFields["accountId"] == "is required")
            #expect(answer.errorFields["lastName"] == "is required")
            #expect(answer.errorFields["tags"] == "must be an array of strings, not string")
            #expect(answer.errorFields["nickname"] == "is not a known field")
            #expect(answer.errorFields["id"] == "is read-only")
            let fraction = try await client.send(
                .post, "/leads", json: #"{"name":"L","email":"l@x.example.com","score":1.5}"#)
            #expect(fraction.errorFields["score"] == "must be a whole number")
            let notObject = try await client.send(.post, "/accounts", json: "[1,2]")
            #expect(notObject.status == .unprocessableContent)
            let nullTags = try await client.send(.post, "/contacts", json: #"{"tags":null}"#)
            #expect(nullTags.errorFields["tags"] == "must not be null")
            let readOnly = try await client.send(
                .post, "/leads", json: #"{"name":"L","email":"l@x.example.com","convertedAt":"2026-01-01"}"#)
            #expect(readOnly.errorFields["convertedAt"] == "is read-only")
            let nullName = try await client.send(.post, "/accounts", json: #"{"name":null}"#)
            #expect(nullName.errorFields["name"] == "must not be null")
            #expect(try await store.eventCount() == 0)
        }
    }

    @Test func unknownIDsAndPathsAre404() async throws {
        try await withMonolith { client, _ in
            for path in [
                "/accounts/acc_nope", "/contacts/con_nope", "/leads/led_nope", "/deals/deal_nope", "/deals/%00bad",
            ] {
                let answer = try await client.json(path)
                #expect(answer.status == .notFound, "\(path)")
                #expect(answer.errorCode == "not_found")
            }
            #expect(try await client.send(.patch, "/contacts/con_nope", json: "{}").status == .notFound)
            #expect(try await client.send(.delete, "/leads/led_nope").status == .notFound)
            let route = try await client.json("/nowhere")
            #expect(route.status == .notFound)
            #expect(route.errorCode == "not_found")
        }
    }

    @Test func oversizedBodyIs413() async throws {
        try await withMonolith { client, store in
            let big = #"{"name":""# + String(repeating: "x", count: RequestLimits.maxBodyBytes) + #""}"#
            let answer = try await client.send(.post, "/accounts", json: big)
            #expect(answer.status == .contentTooLarge)
            #expect(answer.errorCode == "payload_too_large")
            #expect(try await store.count("accounts") == 0)
        }
    }

    @Test func wrongContentTypeIs415() async throws {
        try await withMonolith { client, store in
            let answer = try await client.send(
                .post, "/accounts", json: #"{"name":"Acme"}"#, headers: [.contentType: "text/plain"])
            #expect(answer.status == .unsupportedMediaType)
            #expect(answer.errorCode == "unsupported_media_type")
            let missing = try await client.execute(
                uri: "/accounts", method: .post, body: .init(string: #"{"name":"Acme"}"#)
            ) { JSONAnswer($0) }
            #expect(missing.status == .unsupportedMediaType)
            let charset = try await client.send(
                .post, "/accounts", json: #"{"name":"Acme"}"#,
                headers: [.contentType: "application/json; charset=utf-8"])
            #expect(charset.status == .created)
            #expect(try await store.count("accounts") == 1)
        }
    }

    @Test func badIfMatchIs400AndStaleDeleteIs409() async throws {
        try await withMonolith { client, store in
            let account = try await client.createAccount()
            let bad = try await client.send(
                .patch, "/accounts/\(account)", json: #"{"name":"B"}"#, headers: [.ifMatch: "yesterday"])
            #expect(bad.status == .badRequest)
            #expect(bad.errorCode == "invalid_if_match")
            let stale = try await client.send(.delete, "/accounts/\(account)", headers: [.ifMatch: "7"])
            #expect(stale.status == .conflict)
            #expect(try await store.count("accounts") == 1)
        }
    }
}

@Suite("Monolith: content negotiation")
struct MonolithAcceptTests {
    @Test func anAcceptThatExcludesJSONIs406BeforeAnythingIsWrittenAndWeightsAreHonoured() async throws {
        try await withMonolith { client, store in
            for accept in ["text/html", "image/png, text/*", "application/json;q=0", "*/*, application/json;q=0"] {
                let refused = try await client.send(
                    .post, "/accounts", json: #"{"name":"Acme"}"#, headers: [.accept: accept])
                #expect(refused.status == .notAcceptable, "\(accept)")
                #expect(refused.errorCode == "not_acceptable")
            }
            #expect(try await store.count("accounts") == 0, "no refused write was made")
            for accept in [
                "application/json", "*/*", "application/*", "text/html, application/json;q=0.1",
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "", "application/json;q=nonsense",
            ] {
                let answer = try await client.send(.get, "/accounts", headers: [.accept: accept])
                #expect(answer.status == .ok, "\(accept)")
            }
        }
    }
}
