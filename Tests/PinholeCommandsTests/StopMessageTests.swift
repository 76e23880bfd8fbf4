import Testing

@testable import PinholeCommands

@Suite("Agent messages: stopping and its signals")
struct StopMessageTests {
    @Test("the first Ctrl-C stops cleanly; a second one exits at once")
    func secondSignalExits() {
        var policy = InterruptPolicy()
        #expect(policy.received() == .stopCleanly)
        #expect(policy.received() == .exitNow)
        #expect(policy.received() == .exitNow)
    }

    @Test("stopped, with how many requests were abandoned, if any")
    func stoppedLine() {
        #expect(AgentOutput.stoppedLine(abandoned: 0) == "stopped")
        #expect(AgentOutput.stoppedLine(abandoned: 1) == "stopped (1 request abandoned)")
        #expect(AgentOutput.stoppedLine(abandoned: 3) == "stopped (3 requests abandoned)")
    }

    @Test("a short token is refused with how to make a good one; the token itself is never in the message")
    func tokenStrength() {
        #expect(TokenStrength.problem("0123456789abcdef", from: "--token") == nil)
        #expect(
            TokenStrength.problem("s3cret", from: "--token")
                == "--token: a token of 6 characters is too easy to guess; use at least 16, such as the output of "
                + "`openssl rand -hex 24`")
        #expect(TokenStrength.problem("x", from: "PINHOLE_TOKEN")?.contains("1 character ") == true)
    }
}
