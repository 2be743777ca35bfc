import HTTP1

/// The dashboard's page, script and style: served by the binary (no CDN, no font, no image), under a policy that
/// lets the page load only these two and its own events.
enum DashboardPage {
    /// The login page: a form that POSTs the admin token to `/dashboard/login` (the token never goes in a URL).
    static func login(message: String?) -> String {
        let note = message.map { "<p class=\"problem\" role=\"alert\">\(Self.escape($0))</p>\n" } ?? ""
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Strangler dashboard: sign in</title>
            <link rel="stylesheet" href="/dashboard/app.css"></head>
            <body class="login"><main>
            <h1>Strangler dashboard</h1>
            \(note)<form method="post" action="/dashboard/login">
            <label for="token">Admin token</label>
            <input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
            <button type="submit">Sign in</button>
            </form>
            <p class="hint">The token is the proxy's admin token: STRANGLER_ADMIN_TOKEN, or the file admin-token in its \
            data directory. It is sent once, in this form's body; the page then keeps a session cookie.</p>
            </main></body></html>

            """
    }

    /// The live page (for a viewer with a session): empty tables the script fills from `/dashboard/events`.
    static let app = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Strangler dashboard</title>
        <link rel="stylesheet" href="/dashboard/app.css"></head>
        <body>
        <header>
        <h1>Strangler</h1>
        <p id="status" class="status connecting" role="status">connecting…</p>
        <p id="stages" class="stages"></p>
        <form method="post" action="/dashboard/logout"><button type="submit">Sign out</button></form>
        </header>
        <main>
        <section aria-labelledby="alerts-title"><h2 id="alerts-title">Alerts</h2>
        <ul id="alerts" class="alerts" aria-live="polite"><li class="none">None.</li></ul></section>
        <section aria-labelledby="routes-title"><h2 id="routes-title">Routes <span id="shown"></span></h2>
        <p class="tools"><label for="filter">Filter</label>
        <input id="filter" type="search" placeholder="id, path, stage or service   (press /)" autocomplete="off">
        <span class="keys">Keys: <kbd>/</kbd> filter, <kbd>j</kbd> <kbd>k</kbd> move, <kbd>s</kbd> next sort,
        <kbd>Esc</kbd> clear. Rates over the last 5–10 s, errors and percentiles over 60 s.</span></p>
        <div class="scroll"><table id="routes"><thead><tr>
        <th scope="col"><button data-sort="id">Route</button></th>
        <th scope="col"><button data-sort="stage">Stage</button></th>
        <th scope="col" class="num"><button data-sort="mrps">Monolith req/s</button></th>
        <th scope="col" class="num">err</th><th scope="col" class="num">p50</th><th scope="col" class="num">p99</th>
        <th scope="col" class="num"><button data-sort="srps">Service req/s</button></th>
        <th scope="col" class="num">err</th><th scope="col" class="num">p50</th><th scope="col" class="num">p99</th>
        <th scope="col" class="num"><button data-sort="match">Match</button></th>
        <th scope="col" class="num"><button data-sort="untriaged">Untriaged</button></th>
        <th scope="col"><button data-sort="verdict">Next move</button></th>
        </tr></thead><tbody></tbody></table></div></section>
        <section aria-labelledby="services-title"><h2 id="services-title">Services</h2>
        <table id="services"><thead><tr><th scope="col">Service</th><th scope="col">Health</th>
        <th scope="col" class="num">Sync lag (events)</th><th scope="col">Instances</th></tr></thead>
        <tbody></tbody></table></section>
        <section aria-labelledby="changes-title"><h2 id="changes-title">Last changes</h2>
        <ol id="changes" class="changes" reversed></ol></section>
        </main>
        <script src="/dashboard/app.js"></script>
        </body></html>

        """

    static let style = """
        :root { color-scheme: light dark; --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --muted: #6e7781;
          --line: #d0d7de; font: 14px/1.4 system-ui, sans-serif; }
        body { margin: 0; }
        header { display: flex; gap: 1.5em; align-items: baseline; padding: .5em 1em; border-bottom: 1px solid var(--line);
          position: sticky; top: 0; background: Canvas; z-index: 1; flex-wrap: wrap; }
        header h1 { font-size: 1.2em; margin: 0; }
        header form { margin-left: auto; }
        main { padding: 0 1em 2em; }
        h2 { font-size: 1.05em; margin: 1.2em 0 .4em; }
        .status.live::before { content: "● "; color: var(--ok); }
        .status.connecting::before, .status.lost::before { content: "● "; color: var(--warn); }
        table { border-collapse: collapse; width: 100%; }
        th, td { padding: .2em .5em; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
        th button { font: inherit; font-weight: 600; background: none; border: 0; padding: 0; cursor: pointer;
          color: inherit; }
        th button[aria-sort]::after { content: " ▾"; }
        .num { text-align: right; font-variant-numeric: tabular-nums; }
        .scroll { max-height: 70vh; overflow: auto; }
        thead th { position: sticky; top: 0; background: Canvas; }
        tbody tr:focus { outline: 2px solid Highlight; outline-offset: -2px; }
        tr.hidden { display: none; }
        .stage { font-weight: 600; }
        .stage-transform { color: var(--muted); }
        .stage-coexist { color: var(--warn); }
        .stage-eliminate { color: var(--ok); }
        .route small { color: var(--muted); margin-left: .4em; }
        .ready { color: var(--ok); }
        .blocked { color: var(--bad); }
        .alerts li { color: var(--bad); }
        .alerts li.none, .changes .meta, .hint, .keys { color: var(--muted); }
        .problem { color: var(--bad); }
        .bad { color: var(--bad); }
        kbd { border: 1px solid var(--line); border-radius: 3px; padding: 0 .3em; font-size: .9em; }
        .tools { display: flex; gap: .6em; align-items: baseline; flex-wrap: wrap; }
        #filter { min-width: 22em; }
        body.login main { max-width: 28em; margin: 4em auto; }
        body.login form { display: flex; flex-direction: column; gap: .5em; }
        body.login input, body.login button { font: inherit; padding: .4em; }

        """

    /// The script: one EventSource on `/dashboard/events`; rows are updated in place (only the cells that changed).
    static let script = #"""
        "use strict";
        (() => {
          const $ = (selector) => document.querySelector(selector);
          const body = $("#routes tbody");
          const rows = new Map();      // route id -> { data, element }
          let sortKey = "id";
          const sortKeys = ["id", "stage", "mrps", "srps", "match", "untriaged", "verdict"];
          const stageOrder = { transform: 0, coexist: 1, eliminate: 2 };

          const text = (value) => (value === null || value === undefined ? "–" : String(value));
          const rate = (side) => (side ? side.rps.toFixed(1) + (side.shadowRps > 0 ? " (+" + side.shadowRps.toFixed(1) + " shadow)" : "") : "–");
          const share = (value) => (value === null || value === undefined ? "–" : (100 * value).toFixed(value < 0.1 ? 2 : 1) + "%");
          const ms = (seconds) => (seconds === null || seconds === undefined ? "–" : seconds < 1 ? (1000 * seconds).toFixed(seconds < 0.01 ? 2 : 0) + " ms" : seconds.toFixed(2) + " s");

          function cells(row) {
            const m = row.sides.monolith, s = row.sides.service;
            return [
              null, row.stage,
              rate(m), share(m && m.err), ms(m && m.p50), ms(m && m.p99),
              rate(s), share(s && s.err), ms(s && s.p50), ms(s && s.p99),
              row.match === null ? "–" : share(row.match) + " of " + row.compared,
              text(row.untriaged), row.verdict + (row.reason ? ": " + row.reason : ""),
            ];
          }

          function makeRow(row) {
            const element = document.createElement("tr");
            element.tabIndex = -1;
            element.dataset.route = row.id;
            const first = document.createElement("th");
            first.scope = "row";
            first.className = "route";
            first.append(row.id);
            const small = document.createElement("small");
            first.append(small);
            element.append(first);
            for (let index = 1; index < 13; index++) {
              const cell = document.createElement("td");
              if (index === 1) cell.className = "stage";
              else if (index < 12) cell.className = "num";
              else cell.className = "verdict";
              element.append(cell);
            }
            return element;
          }

          function fill(entry, row) {
            entry.data = row;
            const element = entry.element;
            element.dataset.stage = row.stage;
            const values = cells(row);
            element.cells[0].lastChild.textContent = row.method + " " + row.path;
            for (let index = 1; index < values.length; index++) {
              const cell = element.cells[index];
              if (cell.textContent !== values[index]) cell.textContent = values[index];
            }
            element.cells[1].className = "stage stage-" + row.stage;
            element.cells[12].className = "verdict " + (row.verdict === "blocked" ? "blocked" : row.verdict === "ready" ? "ready" : "");
            const errors = [row.sides.monolith && row.sides.monolith.err, row.sides.service && row.sides.service.err];
            element.cells[3].classList.toggle("bad", (errors[0] || 0) >= 0.01);
            element.cells[7].classList.toggle("bad", (errors[1] || 0) >= 0.01);
          }

          function key(row) {
            switch (sortKey) {
              case "stage": return [stageOrder[row.stage] ?? 9, row.id];
              case "mrps": return [-(row.sides.monolith ? row.sides.monolith.rps : 0), row.id];
              case "srps": return [-(row.sides.service ? row.sides.service.rps : 0), row.id];
              case "match": return [row.match === null ? 2 : row.match, row.id];
              case "untriaged": return [-(row.untriaged || 0), row.id];
              case "verdict": return [row.verdict, row.id];
              default: return [row.id, ""];
            }
          }

          function order() {
            const entries = [...rows.values()];
            entries.sort((a, b) => {
              const x = key(a.data), y = key(b.data);
              return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0;
            });
            const fragment = document.createDocumentFragment();
            for (const entry of entries) fragment.append(entry.element);
            body.append(fragment);
            for (const button of document.querySelectorAll("th button")) {
              if (button.dataset.sort === sortKey) button.setAttribute("aria-sort", "descending");
              else button.removeAttribute("aria-sort");
            }
            applyFilter();
          }

          function applyFilter() {
            const words = $("#filter").value.toLowerCase().split(/\s+/).filter(Boolean);
            let shown = 0;
            for (const entry of rows.values()) {
              const row = entry.data;
              const haystack = (row.id + " " + row.method + " " + row.path + " " + row.stage + " " + (row.service || "") + " " + row.verdict).toLowerCase();
              const visible = words.every((word) => haystack.includes(word));
              entry.element.classList.toggle("hidden", !visible);
              if (visible) shown++;
            }
            $("#shown").textContent = "(" + shown + " of " + rows.size + ")";
          }

          function upsert(list, removed) {
            let added = false;
            for (const row of list) {
              let entry = rows.get(row.id);
              if (!entry) {
                entry = { element: makeRow(row), data: row };
                rows.set(row.id, entry);
                added = true;
              }
              fill(entry, row);
            }
            for (const id of removed || []) {
              const entry = rows.get(id);
              if (entry) { entry.element.remove(); rows.delete(id); }
            }
            if (added || (removed && removed.length) || sortKey !== "id") order(); else applyFilter();
            stages();
          }

          function stages() {
            const counts = { transform: 0, coexist: 0, eliminate: 0 };
            for (const entry of rows.values()) counts[entry.data.stage] = (counts[entry.data.stage] || 0) + 1;
            $("#stages").textContent = rows.size + " routes: " + counts.transform + " transform, " + counts.coexist + " coexist, " + counts.eliminate + " eliminate";
          }

          function alerts(list) {
            const target = $("#alerts");
            target.replaceChildren();
            if (!list.length) {
              const none = document.createElement("li");
              none.className = "none";
              none.textContent = "None.";
              target.append(none);
            }
            for (const alert of list) {
              const item = document.createElement("li");
              item.dataset.kind = alert.kind;
              item.textContent = alert.text;
              target.append(item);
            }
          }

          function services(list) {
            const target = $("#services tbody");
            target.replaceChildren();
            for (const service of list) {
              const row = target.insertRow();
              row.dataset.service = service.name;
              const name = document.createElement("th");
              name.scope = "row";
              name.textContent = service.name;
              row.append(name);
              const health = row.insertCell();
              health.textContent = service.health;
              health.classList.toggle("bad", service.health !== "ok" && service.health !== "not checked");
              const lag = row.insertCell();
              lag.className = "num";
              lag.textContent = service.lag === null ? (service.problem || "–") : String(service.lag);
              const instances = row.insertCell();
              instances.textContent = service.instances.map((instance) => instance.url + (instance.ejected ? " ejected" : instance.healthy ? " healthy" : " unhealthy")).join(", ");
            }
          }

          function changes(list) {
            const target = $("#changes");
            target.replaceChildren();
            for (const change of list.slice().reverse()) {
              const item = document.createElement("li");
              const meta = document.createElement("span");
              meta.className = "meta";
              meta.textContent = (change.time || "") + " " + (change.actor || "") + ": ";
              item.append(meta, (change.action || "") + " " + (change.routes || []).join(", ") + (change.reason ? " (" + change.reason + ")" : ""));
              target.append(item);
            }
          }

          function status(kind, message) {
            const element = $("#status");
            element.className = "status " + kind;
            element.textContent = message;
          }

          const source = new EventSource("/dashboard/events");
          source.onopen = () => status("live", "live");
          source.onerror = () => status("lost", "reconnecting…");
          source.addEventListener("snapshot", (event) => {
            const state = JSON.parse(event.data);
            for (const entry of rows.values()) entry.element.remove();
            rows.clear();
            upsert(state.routes, []);
            alerts(state.alerts);
            services(state.services);
            changes(state.changes);
            status("live", "live, table version " + state.version);
            document.body.dataset.version = state.version;
          });
          source.addEventListener("routes", (event) => {
            const update = JSON.parse(event.data);
            upsert(update.rows, update.removed);
            status("live", "live, table version " + update.version);
            document.body.dataset.version = update.version;
          });
          source.addEventListener("alerts", (event) => alerts(JSON.parse(event.data)));
          source.addEventListener("services", (event) => services(JSON.parse(event.data)));
          source.addEventListener("changes", (event) => changes(JSON.parse(event.data)));

          for (const button of document.querySelectorAll("th button")) {
            button.addEventListener("click", () => { sortKey = button.dataset.sort; order(); });
          }
          $("#filter").addEventListener("input", applyFilter);

          function visibleRows() { return [...body.rows].filter((row) => !row.classList.contains("hidden")); }
          document.addEventListener("keydown", (event) => {
            if (event.target === $("#filter")) {
              if (event.key === "Escape") { $("#filter").value = ""; applyFilter(); $("#filter").blur(); }
              else if (event.key === "ArrowDown" || event.key === "Enter") { const first = visibleRows()[0]; if (first) { event.preventDefault(); first.focus(); } }
              return;
            }
            if (event.ctrlKey || event.metaKey || event.altKey) return;
            if (event.key === "/") { event.preventDefault(); $("#filter").focus(); }
            else if (event.key === "Escape") { $("#filter").value = ""; applyFilter(); }
            else if (event.key === "s") { sortKey = sortKeys[(sortKeys.indexOf(sortKey) + 1) % sortKeys.length]; order(); }
            else if (event.key === "j" || event.key === "k" || event.key === "ArrowDown" || event.key === "ArrowUp") {
              const list = visibleRows();
              if (!list.length) return;
              const at = list.indexOf(document.activeElement);
              const down = event.key === "j" || event.key === "ArrowDown";
              const next = at < 0 ? 0 : Math.max(0, Math.min(list.length - 1, at + (down ? 1 : -1)));
              event.preventDefault();
              list[next].focus();
            }
          });
        })();

        """#

    static func escape(_ text: String) -> String { ProblemAnswer.escape(text) }
}
