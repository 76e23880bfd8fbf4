import NIOCore

/// The inspector's page: one HTML document with its style and script inline, served
/// from the binary. No build step, no CDN, nothing fetched but the API.
enum InspectorPage {
    static let html = ByteBuffer(string: document)

    private static let document = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Pinhole inspector</title>
        <style>
        \(InspectorPageStyle.css)
        </style>
        </head>
        <body>
        <header>
          <h1>Pinhole <span>inspector</span></h1>
          <div class="filters">
            <input id="f-path" placeholder="path contains" title="Show requests whose path contains this">
            <input id="f-status" placeholder="status: 2xx, 404, 5xx" size="14" title="A status, or a class like 4xx">
            <input id="f-header" placeholder="header: name[=value]" size="18"
                   title="Requests with this request or response header (and value substring)">
            <input id="f-duration" placeholder="slower than ms" size="12" title="Only requests slower than this">
          </div>
          <div class="actions">
            <button id="compare" disabled title="Compare the responses of two selected requests">Compare</button>
            <button id="har" title="Download the selected requests (or all) as HAR 1.2">Export HAR</button>
            <button id="clear" title="Forget every captured request">Clear</button>
            <span id="live" class="live off">connecting</span>
          </div>
        </header>
        <main>
          <section id="list">
            <table>
              <thead><tr><th></th><th>time</th><th>method</th><th>path</th><th>status</th>
              <th class="num">duration</th><th class="num">size</th><th>protocol</th></tr></thead>
              <tbody id="rows"></tbody>
            </table>
            <p id="empty">No requests yet. Send one through the tunnel and it appears here.</p>
          </section>
          <section id="detail" hidden></section>
        </main>
        <script>
        \(InspectorPageScript.javascript)
        </script>
        </body>
        </html>
        """
}
