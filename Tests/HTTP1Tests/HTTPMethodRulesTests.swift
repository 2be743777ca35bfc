import HTTP1
import Testing

@Suite("Safe and idempotent methods")
struct HTTPMethodRulesTests {
    @Test(arguments: ["GET", "HEAD", "OPTIONS"])
    func safeMethodsAreSafeAndIdempotent(method: String) {
        #expect(HTTPMethodRules.isSafe(method))
        #expect(HTTPMethodRules.isIdempotent(method))
        #expect(!HTTPMethodRules.isWrite(method))
    }

    @Test(arguments: ["POST", "PUT", "PATCH", "DELETE", "CONNECT", "TRACE", "PROPFIND"])
    func everyOtherMethodIsAWrite(method: String) {
        #expect(!HTTPMethodRules.isSafe(method))
        #expect(HTTPMethodRules.isWrite(method))
    }

    @Test func putAndDeleteAreIdempotentPostAndPatchAreNot() {
        #expect(HTTPMethodRules.isIdempotent("PUT") && HTTPMethodRules.isIdempotent("DELETE"))
        #expect(!HTTPMethodRules.isIdempotent("POST") && !HTTPMethodRules.isIdempotent("PATCH"))
    }

    /// Methods are case-sensitive (RFC 9110 §9.1).
    @Test func methodsAreCaseSensitive() {
        #expect(!HTTPMethodRules.isSafe("get"))
        #expect(HTTPMethodRules.isWrite("Get"))
        #expect(HTTPMethodRules.isSafe(Substring("GET /x").prefix(3)))
    }
}
