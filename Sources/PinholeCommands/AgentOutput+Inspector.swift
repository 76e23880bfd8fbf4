import PinholeInspector

extension AgentOutput {
    /// A request held at the app outlived its caller's deadline: one console line (or
    /// JSON event) with the word "deadline", so the developer knows the caller gave up.
    static func deadlinePassed(_ notice: DeadlineNotice, format: Format) {
        if format == .json {
            Terminal.json([
                "event": "deadline", "id": notice.id, "method": notice.method, "path": notice.path,
                "deadline_ms": Int(notice.deadline.timeout.nanoseconds / 1_000_000),
                "deadline_source": notice.deadline.source,
            ])
        } else {
            Terminal.out("          deadline: \(notice.message)")
        }
    }
}
