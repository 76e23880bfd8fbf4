import Testing

@testable import PinholeCore

/// Expects `body` to throw an `HTTP1SyntaxError` whose description contains `complaint`.
func expectSyntaxError(
    containing complaint: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) {
    #expect(sourceLocation: sourceLocation) {
        try body()
    } throws: { error in
        (error as? HTTP1SyntaxError)?.description.contains(complaint) ?? false
    }
}
