/// The page's script: the list (kept live from `/api/events`), filters, the detail view
/// with its body renderers, replay, edit-and-replay, compare and export.
enum InspectorPageScript {
    static let javascript = #"""
        "use strict";
        const requests = new Map();   // id -> summary, oldest first
        const KEEP = 2000;            // the page holds the newest this many; a busy agent keeps more
        const SHOW = 500;             // and shows the newest this many that pass the filters
        const selected = new Set();   // ids ticked for HAR / compare
        let current = null;           // id shown in the detail view
        let currentDetail = null;
        const $ = (id) => document.getElementById(id);
        const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) =>
          ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

        async function api(method, path, body) {
          const init = { method, headers: {} };
          if (body !== undefined) { init.body = JSON.stringify(body); init.headers["content-type"] = "application/json"; }
          const response = await fetch(path, init);
          const text = await response.text();
          const value = text ? JSON.parse(text) : {};
          if (!response.ok) throw new Error(value.error || response.statusText);
          return value;
        }

        // --- the list -------------------------------------------------------------
        function ms(v) { return v == null ? "" : v >= 1000 ? (v / 1000).toFixed(2) + " s" : v.toFixed(1) + " ms"; }
        function size(n) {
          if (n == null) return "";
          if (n < 1024) return n + " B";
          if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
          return (n / 1048576).toFixed(1) + " MiB";
        }
        function clock(iso) { const d = new Date(iso); return d.toTimeString().slice(0, 8); }
        function elapsed(r) { return r.duration_ms ?? (Date.now() - Date.parse(r.time)); }
        function statusCell(r) {
          if (r.state === "pending") return '<span class="pending">pending</span>';
          const cls = "s" + String(r.status)[0];
          return '<span class="' + cls + '">' + esc(r.status) + (r.state === "failed" ? " ✕" : "") + "</span>";
        }
        function durationCell(r) {
          if (r.state === "complete" || r.state === "failed") return ms(r.duration_ms);
          const t = elapsed(r);
          let text = '<span class="pending">' + ms(t) + "</span>";
          if (r.deadline_ms != null && r.state === "pending") {
            const left = r.deadline_ms - t;
            text += left > 0 ? ' <span class="note" title="the caller\'s deadline (' + esc(r.deadline_source) + ')">'
              + (left / 1000).toFixed(1) + " s left</span>"
              : ' <span class="late" title="the caller has given up">deadline passed</span>';
          }
          return text;
        }
        function matches(r) {
          const path = $("f-path").value.trim();
          if (path && !r.path.includes(path)) return false;
          const status = $("f-status").value.trim().toLowerCase();
          if (status) {
            const s = String(r.status ?? "pending");
            if (/^[1-5]xx$/.test(status) ? s[0] !== status[0] : !s.startsWith(status)) return false;
          }
          const slower = parseFloat($("f-duration").value.replace(/[^0-9.]/g, ""));
          if (!isNaN(slower) && elapsed(r) < slower) return false;
          const header = $("f-header").value.trim().toLowerCase();
          if (header) {
            const headers = headerIndex.get(r.id);
            if (!headers) { loadHeaders(r.id); return false; }
            const at = header.indexOf("=");
            const name = (at < 0 ? header : header.slice(0, at)).trim();
            const value = at < 0 ? undefined : header.slice(at + 1).trim();
            if (!headers.some(([n, v]) => n === name && (value === undefined || v.toLowerCase().includes(value))))
              return false;
          }
          return true;
        }
        // Header filters need the headers, which summaries do not carry: fetched once per request.
        const headerIndex = new Map();
        const headerLoading = new Set();
        async function loadHeaders(id) {
          if (headerLoading.has(id)) return;
          headerLoading.add(id);
          try {
            const d = await api("GET", "/api/requests/" + id);
            const all = d.request.headers.concat(d.response ? d.response.headers : []);
            headerIndex.set(id, all.map((h) => [h.name.toLowerCase(), h.value]));
            if (d.state === "complete" || d.state === "failed") render(); else headerLoading.delete(id);
          } catch (e) { /* gone */ }
        }
        // The client's protocol, as the log writes it, and what rides on it.
        function protocolText(r) { return r.protocol + (r.grpc_method ? " gRPC" : "") + (r.upgrade ? " " + r.upgrade : ""); }
        const GRPC_CODES = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
          "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
          "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"];
        function grpcStatus(d) {
          if (d.grpc_status == null) return "";
          return '<h3>gRPC status</h3><dl id="grpc-status"><dt>grpc-status</dt><dd>' + d.grpc_status + " "
            + esc(GRPC_CODES[d.grpc_status] || "") + "</dd>"
            + (d.grpc_message ? "<dt>grpc-message</dt><dd>" + esc(d.grpc_message) + "</dd>" : "") + "</dl>";
        }
        function rowHTML(r) {
          const replay = r.replay_of != null ? '<span class="tag" title="a replay of #' + r.replay_of + '">↻ #'
            + r.replay_of + "</span>" : "";
          return '<td><input type="checkbox" data-pick="' + r.id + '"' + (selected.has(r.id) ? " checked" : "")
            + "></td><td>" + clock(r.time) + "</td><td>" + esc(r.method) + '</td><td class="path" title="'
            + esc(r.path) + '">' + replay + esc(r.path) + "</td><td>" + statusCell(r) + '</td><td class="num dur">'
            + durationCell(r) + '</td><td class="num">' + size(r.bytes_out) + "</td><td>" + esc(protocolText(r)) + "</td>";
        }
        function render() {
          const rows = $("rows");
          const shown = [...requests.values()].filter(matches).sort((a, b) => b.id - a.id).slice(0, SHOW);
          rows.innerHTML = shown.map((r) => '<tr data-id="' + r.id + '"' + (r.id === current ? ' class="selected"' : "")
            + ">" + rowHTML(r) + "</tr>").join("");
          $("empty").hidden = requests.size > 0;
          $("compare").disabled = selected.size !== 2;
          $("har").textContent = selected.size ? "Export HAR (" + selected.size + ")" : "Export HAR";
        }
        function upsert(r) {
          requests.set(r.id, r);
          for (const id of requests.keys()) {
            if (requests.size <= KEEP) break;
            if (id !== current) requests.delete(id);
          }
          if (r.id === current) showDetail(r.id, false);
        }
        $("rows").addEventListener("click", (e) => {
          const pick = e.target.dataset && e.target.dataset.pick;
          if (pick) {
            const id = Number(pick);
            e.target.checked ? selected.add(id) : selected.delete(id);
            render();
            return;
          }
          const row = e.target.closest("tr");
          if (row) showDetail(Number(row.dataset.id), true);
        });
        for (const id of ["f-path", "f-status", "f-header", "f-duration"]) $(id).addEventListener("input", render);

        // --- live updates -----------------------------------------------------------
        let renderQueued = false;
        function queueRender() {
          if (renderQueued) return;
          renderQueued = true;
          requestAnimationFrame(() => { renderQueued = false; render(); });
        }
        function connect() {
          const events = new EventSource("/api/events");
          events.addEventListener("hello", async () => {
            $("live").textContent = "live"; $("live").classList.remove("off");
            const list = await api("GET", "/api/requests?limit=" + KEEP);
            requests.clear();
            for (const r of list.requests) requests.set(r.id, r);
            render();
          });
          events.addEventListener("request", (e) => { upsert(JSON.parse(e.data)); queueRender(); });
          events.addEventListener("removed", (e) => { requests.delete(JSON.parse(e.data).id); queueRender(); });
          events.addEventListener("cleared", () => { requests.clear(); selected.clear(); hideDetail(); render(); });
          events.onerror = () => { $("live").textContent = "reconnecting"; $("live").classList.add("off"); };
        }
        // The running clocks of requests still at the app.
        setInterval(() => {
          for (const row of $("rows").children) {
            const r = requests.get(Number(row.dataset.id));
            if (r && (r.state === "pending" || r.state === "responding")) row.querySelector(".dur").innerHTML = durationCell(r);
          }
          const clockCell = $("detail-clock");
          if (clockCell && requests.get(current)) clockCell.innerHTML = durationCell(requests.get(current));
        }, 100);

        // --- bodies -------------------------------------------------------------------
        function bytesOf(body) { return Uint8Array.from(atob(body.base64), (c) => c.charCodeAt(0)); }
        function utf8(bytes) { try { return new TextDecoder("utf-8", { fatal: true }).decode(bytes); } catch { return null; } }
        function hex(bytes) {
          let out = "";
          for (let i = 0; i < bytes.length; i += 16) {
            const line = bytes.slice(i, i + 16);
            out += i.toString(16).padStart(8, "0") + "  "
              + [...line].map((b) => b.toString(16).padStart(2, "0")).join(" ").padEnd(48) + "  "
              + [...line].map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : ".")).join("") + "\n";
          }
          return out;
        }
        function grpcMessages(bytes) {
          const out = [];
          let at = 0;
          while (at + 5 <= bytes.length) {
            const length = new DataView(bytes.buffer, bytes.byteOffset + at + 1, 4).getUint32(0);
            const message = bytes.slice(at + 5, at + 5 + length);
            out.push({ compressed: bytes[at] === 1, length, message, complete: message.length === length });
            at += 5 + length;
          }
          return out;
        }
        function renderBody(body, id) {
          if (!body || body.size === 0) return '<p class="note">no body</p>';
          const bytes = bytesOf(body);
          const type = (body.content_type || "").toLowerCase();
          let kind, text;
          if (type.startsWith("application/grpc")) {
            kind = "gRPC messages";
            text = grpcMessages(bytes).map((m, i) => "message " + (i + 1) + ": " + m.length + " bytes"
              + (m.compressed ? ", compressed" : "") + (m.complete ? "" : " (cut: only part kept)") + "\n"
              + hex(m.message)).join("\n") || "(no complete message)";
          } else if (type.includes("json") && utf8(bytes) != null) {
            kind = "JSON";
            try { text = JSON.stringify(JSON.parse(utf8(bytes)), null, 2); } catch { text = utf8(bytes); kind = "text (not valid JSON)"; }
          } else if (type.startsWith("application/x-www-form-urlencoded") && utf8(bytes) != null) {
            kind = "form";
            const params = new URLSearchParams(utf8(bytes));
            text = [...params].map(([k, v]) => k + " = " + v).join("\n");
          } else if (utf8(bytes) != null && !/[\x00-\x08\x0e-\x1f]/.test(utf8(bytes))) {
            kind = "text"; text = utf8(bytes);
          } else {
            kind = "binary (hex)"; text = hex(bytes);
          }
          const cut = body.truncated ? " · only the first " + size(body.kept) + " of " + size(body.size) + " kept" : "";
          return '<p class="note">' + esc(kind) + " · " + size(body.size) + esc(cut) + '</p><pre id="' + id + '">'
            + esc(text) + "</pre>";
        }
        function headerList(headers) {
          if (!headers || !headers.length) return '<p class="note">none</p>';
          return "<dl>" + headers.map((h) => "<dt>" + esc(h.name) + "</dt><dd>" + esc(h.value) + "</dd>").join("") + "</dl>";
        }

        // --- the detail view ------------------------------------------------------------
        function hideDetail() { current = null; $("detail").hidden = true; document.querySelector("main").classList.add("single"); }
        async function showDetail(id, fromClick) {
          current = id;
          let d;
          try { d = await api("GET", "/api/requests/" + id); } catch (e) { return; }
          if (current !== id) return;
          const editing = !fromClick && $("edit-form");
          if (editing) return;   // do not wipe an edit in progress
          // Re-render only on a change: a still pane keeps its selection and focus.
          if (!fromClick && currentDetail && JSON.stringify(currentDetail) === JSON.stringify(d)) return;
          currentDetail = d;
          const pane = $("detail");
          pane.hidden = false;
          document.querySelector("main").classList.remove("single");
          pane.innerHTML = "<h2>" + esc(d.method) + " " + esc(d.path) + "</h2>"
            + '<p class="note">#' + d.id + " · " + esc(d.time) + " · " + esc(protocolText(d)) + " · " + statusCell(d)
            + (d.error ? " · " + esc(d.error) : "")
            + (d.replay_of != null ? ' · replay of <a data-open="' + d.replay_of + '">#' + d.replay_of + "</a>" : "")
            + (d.replays.length ? " · replayed as " + d.replays.map((r) => '<a data-open="' + r + '">#' + r + "</a>").join(", ") : "")
            + "</p>"
            + '<div class="bar"><button id="replay" class="primary">Replay</button>'
            + '<button id="edit">Edit and replay</button><button id="copy-curl">Copy as curl</button>'
            + (d.replay_of != null ? '<button id="compare-original">Compare with #' + d.replay_of + "</button>" : "")
            + '<span id="replay-note" class="note"></span></div><div id="edit-slot"></div>'
            + "<h3>Timing</h3>" + '<div class="timing"><div>queued<b>' + (ms(d.timing.queued_ms) || "–") + "</b></div>"
            + "<div>at the app<b>" + (ms(d.timing.at_app_ms) || '<span id="detail-clock">' + durationCell(d) + "</span>")
            + "</b></div><div>streaming<b>" + (ms(d.timing.streaming_ms) || "–") + "</b></div>"
            + "<div>total<b>" + (ms(d.duration_ms) || "–") + "</b></div></div>"
            + (d.deadline_ms != null ? '<p class="note">the caller\'s deadline: ' + ms(d.deadline_ms) + " ("
              + esc(d.deadline_source) + ")</p>" : "")
            + "<h3>Client</h3><dl><dt>address</dt><dd>" + esc(d.client || "unknown") + "</dd>"
            + d.forwarded.map((h) => "<dt>" + esc(h.name) + "</dt><dd>" + esc(h.value) + "</dd>").join("") + "</dl>"
            + "<h3>Request headers</h3>" + headerList(d.request.headers)
            + "<h3>Request body</h3>" + renderBody(d.request.body, "req-body")
            + (d.request.trailers ? "<h3>Request trailers</h3>" + headerList(d.request.trailers) : "")
            + (d.response ? "<h3>Response headers</h3>" + headerList(d.response.headers)
              + grpcStatus(d)
              + "<h3>Response body</h3>" + renderBody(d.response.body, "resp-body")
              + (d.response.trailers ? "<h3>Response trailers</h3>" + headerList(d.response.trailers) : "")
              : "<h3>Response</h3><p class=\"note\">" + (d.state === "pending" ? "waiting for the app…" : "none") + "</p>");
          $("replay").onclick = () => replay(d.id, undefined);
          $("edit").onclick = () => editForm(d);
          $("copy-curl").onclick = async () => {
            try { await navigator.clipboard.writeText(d.curl); $("replay-note").textContent = "copied"; }
            catch { window.prompt("curl command", d.curl); }
          };
          if ($("compare-original")) $("compare-original").onclick = () => compare(d.replay_of, d.id);
          pane.querySelectorAll("[data-open]").forEach((a) => a.onclick = () => showDetail(Number(a.dataset.open), true));
          render();
        }
        async function replay(id, changes) {
          $("replay-note").textContent = "sending…";
          try {
            const r = await api("POST", "/api/requests/" + id + "/replay", changes);
            requests.set(r.id, r);
            render();
            $("replay-note").innerHTML = 'sent as <a data-open="' + r.id + '">#' + r.id + "</a>";
            $("replay-note").querySelector("a").onclick = () => showDetail(r.id, true);
          } catch (e) { $("replay-note").textContent = "replay failed: " + e.message; }
        }
        function editForm(d) {
          const body = d.request.body.size ? utf8(bytesOf(d.request.body)) : "";
          $("edit-slot").innerHTML = '<form class="edit" id="edit-form"><div class="row">'
            + '<input id="edit-method" size="8" value="' + esc(d.method) + '">'
            + '<input id="edit-path" style="flex:1" value="' + esc(d.path) + '"></div>'
            + '<label class="note">headers, one "Name: value" a line</label><textarea id="edit-headers">'
            + esc(d.request.headers.map((h) => h.name + ": " + h.value).join("\n")) + "</textarea>"
            + '<label class="note">body' + (body == null ? " (binary: leave empty to send the original)" : "") + "</label>"
            + '<textarea id="edit-body">' + esc(body ?? "") + "</textarea>"
            + '<div class="row"><button type="submit" id="edit-send" class="primary">Send</button>'
            + '<button type="button" id="edit-cancel">Cancel</button></div></form>';
          $("edit-cancel").onclick = () => { $("edit-slot").innerHTML = ""; };
          $("edit-form").onsubmit = (e) => {
            e.preventDefault();
            const headers = $("edit-headers").value.split("\n").filter((l) => l.includes(":")).map((l) => {
              const at = l.indexOf(":");
              return { name: l.slice(0, at).trim(), value: l.slice(at + 1).trim() };
            });
            const changes = { method: $("edit-method").value.trim(), path: $("edit-path").value.trim(), headers };
            if (body != null || $("edit-body").value) changes.body = $("edit-body").value;
            $("edit-slot").innerHTML = "";
            replay(d.id, changes);
          };
        }

        // --- compare and export -----------------------------------------------------------
        function responseText(d) {
          if (!d.response) return "(no response)";
          const bytes = bytesOf(d.response.body);
          let body = utf8(bytes);
          if (body != null && (d.response.body.content_type || "").includes("json")) {
            try { body = JSON.stringify(JSON.parse(body), null, 2); } catch { }
          }
          return "status " + d.status + "\n" + d.response.headers.map((h) => h.name + ": " + h.value).join("\n")
            + "\n\n" + (body ?? hex(bytes));
        }
        async function compare(a, b) {
          const [left, right] = await Promise.all([api("GET", "/api/requests/" + a), api("GET", "/api/requests/" + b)]);
          const l = responseText(left).split("\n"), r = responseText(right).split("\n");
          const side = (lines, other) => lines.map((line, i) =>
            '<div class="' + (line !== other[i] ? "diff" : "") + '">' + (esc(line) || "&nbsp;") + "</div>").join("");
          const pane = $("detail");
          pane.hidden = false;
          document.querySelector("main").classList.remove("single");
          current = null;
          pane.innerHTML = "<h2>Compare #" + a + " and #" + b + "</h2>"
            + '<p class="note">lines that differ are highlighted</p><div class="compare" id="compare-view">'
            + "<div><h3>#" + a + " " + esc(left.method) + " " + esc(left.path) + "</h3><pre>" + side(l, r) + "</pre></div>"
            + "<div><h3>#" + b + " " + esc(right.method) + " " + esc(right.path) + "</h3><pre>" + side(r, l) + "</pre></div></div>";
        }
        $("compare").onclick = () => { const [a, b] = [...selected].sort((x, y) => x - y); compare(a, b); };
        $("har").onclick = () => {
          const ids = [...selected].sort((x, y) => x - y).join(",");
          const link = document.createElement("a");
          link.href = "/api/har" + (ids ? "?ids=" + ids : "");
          link.download = "pinhole.har";
          link.click();
        };
        $("clear").onclick = () => api("DELETE", "/api/requests").catch(() => {});
        hideDetail();
        render();
        connect();
        """#
}
