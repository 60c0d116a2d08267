/* rngtrace's HTML report. Everything from the log is shown with textContent or set
   as an attribute through the DOM, never parsed as markup. */
(function () {
  "use strict";
  const el = document.getElementById("rngtrace-data");
  const D = el ? JSON.parse(el.textContent) : { strings: [], logs: [] };
  const S = D.strings;
  const F = { op: 0, module: 1, type: 2, target: 3, shape: 4, gen: 5, phase: 6, site: 7,
    code: 8, args: 9, api: 10, numel: 11, flags: 12, node: 13, worker: 14, dtype: 15 };
  const PAGE = 100;
  const str = (i) => (i < 0 ? "" : S[i]);
  const fmt = (n) => n.toLocaleString("en-US");

  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") e.textContent = v; else e.setAttribute(k, v);
    }
    for (const k of kids) if (k != null) e.append(k);
    return e;
  }

  function starts(runs) {
    const out = [];
    let n = 0;
    for (const r of runs) { out.push(n); n += r[1]; }
    return out;
  }

  function search(arr, x) {  // the last position p with arr[p] <= x
    let lo = 0, hi = arr.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (arr[mid] <= x) lo = mid; else hi = mid - 1;
    }
    return lo;
  }

  class Table {
    constructor(t, id) {
      this.t = t; this.id = id; this.rows = t.sig.length;
      this.stepRows = t.step.map((s) => s[0]);
      if (t.idx) { this.idxStart = starts(t.idx); this.idxFirst = t.idx.map((r) => r[0]); }
      this.nodes = null; this.match = null;
    }
    index(r) {
      if (!this.t.idx) return r;
      const k = search(this.idxStart, r);
      return this.t.idx[k][0] + r - this.idxStart[k];
    }
    row(index) {  // the row of a draw index, -1 when the page does not hold it
      if (!this.t.idx) return index < this.rows ? index : -1;
      if (!this.t.idx.length || index < this.idxFirst[0]) return -1;
      const k = search(this.idxFirst, index), run = this.t.idx[k];
      return index < run[0] + run[1] ? this.idxStart[k] + index - run[0] : -1;
    }
    step(r) { return this.t.step.length ? this.t.step[search(this.stepRows, r)][1] : 0; }
    sig(r) { return this.t.sigs[this.t.sig[r]]; }
    byNode(node) {
      if (!this.nodes) {
        this.nodes = new Map();
        for (let r = 0; r < this.rows; r++) {
          const n = this.sig(r)[F.node];
          if (!this.nodes.has(n)) this.nodes.set(n, []);
          this.nodes.get(n).push(r);
        }
      }
      return this.nodes.get(node) || [];
    }
    ok(r) { return !this.match || this.match[this.t.sig[r]] === 1; }
  }
  const tables = D.logs.map((t, i) => new Table(t, i));

  // -- filter ------------------------------------------------------------------------
  const filt = { module: "", op: "", phase: "", gen: "" };
  function glob(p) {
    const re = p.replace(/[.+^${}()|\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
    return new RegExp("^" + re + "$", "i");
  }
  function sigMatches(s, mod) {
    if (filt.phase && str(s[F.phase]) !== filt.phase) return false;
    if (filt.gen && str(s[F.gen]) !== filt.gen) return false;
    if (filt.op && !str(s[F.op]).toLowerCase().includes(filt.op)) return false;
    if (!filt.module) return true;
    const m = s[F.module] < 0 ? "-" : (str(s[F.module]) || "(root)");
    const names = [m, str(s[F.target])];
    return mod ? names.some((n) => mod.test(n))
      : names.some((n) => n.toLowerCase().includes(filt.module));
  }
  function active() { return !!(filt.module || filt.op || filt.phase || filt.gen); }
  function applyFilter() {
    const mod = /[*?]/.test(filt.module) ? glob(filt.module) : null;
    let shown = 0;
    for (const t of tables) {
      t.match = active() ? Uint8Array.from(t.t.sigs, (s) => (sigMatches(s, mod) ? 1 : 0)) : null;
      if (t.match) for (let r = 0; r < t.rows; r++) shown += t.match[t.t.sig[r]];
    }
    filterTree();
    for (const own of document.querySelectorAll("details.mod[open] > .own")) fillOwn(own);
    if (listing) listing.render();
    if (sbs) sbs.render();
    const count = document.getElementById("filter-count");
    if (count) count.textContent = active() ? fmt(shown) + " matching draws in the page" : "";
  }
  function filterTree() {
    const mods = Array.from(document.querySelectorAll("details.mod")).reverse();
    for (const d of mods) d.kid = false;
    for (const d of mods) {
      let ok = !active() || d.kid;
      const key = d.getAttribute("data-node");
      if (!ok && key) {
        const [l, n] = key.split("-").map(Number);
        const t = tables[l];
        ok = t.byNode(n).some((r) => t.ok(r));
      }
      d.hidden = !ok;
      const up = d.parentElement && d.parentElement.closest("details.mod");
      if (ok && up) up.kid = true;
    }
  }
  function setupFilter() {
    const box = document.getElementById("filters");
    if (!box) return;
    let timer = 0;
    for (const input of box.querySelectorAll("input, select")) {
      input.addEventListener("input", () => {
        filt[input.name] = input.tagName === "SELECT" ? input.value : input.value.trim().toLowerCase();
        clearTimeout(timer);
        timer = setTimeout(applyFilter, 120);
      });
    }
  }

  // -- draws -------------------------------------------------------------------------
  const COLS = ["#", "op", "target", "shape", "args", "phase", "step", "generator", "site", "code"];
  function cells(t, r, withModule) {
    const s = t.sig(r), f = s[F.flags];
    const mark = (f & 1 ? " (drew nothing)" : "") + (f & 2 ? " (discarded)" : "")
      + (f & 8 ? " (replay)" : "") + (s[F.worker] >= 0 ? " (worker " + s[F.worker] + ")" : "");
    const out = [String(t.index(r)), str(s[F.op]).replace(/^aten::/, "") + mark];
    if (withModule) out.push(s[F.module] < 0 ? "-" : (str(s[F.module]) || "(root)"));
    out.push(str(s[F.target]), str(s[F.shape]), str(s[F.args]), str(s[F.phase]),
      String(t.step(r)), str(s[F.gen]), str(s[F.site]), str(s[F.code]));
    return out;
  }
  function drawRow(t, r, withModule) {
    const tr = h("tr", { id: "draw-" + t.id + "-" + t.index(r) });
    cells(t, r, withModule).forEach((c, i, all) => {
      const td = h("td", { text: c });
      if (i === all.length - 1) { td.className = "code"; td.setAttribute("title", c); }
      if (i === all.length - 7) td.className = "args";
      tr.append(td);
    });
    return tr;
  }
  function drawTable(t, rows, withModule, upTo) {
    const cols = withModule ? ["#", "op", "module", ...COLS.slice(2)] : COLS;
    const body = h("tbody");
    const table = h("table", { class: "draws" },
      h("thead", {}, h("tr", {}, ...cols.map((c) => h("th", { scope: "col", text: c })))), body);
    const wrap = h("div", {}, table);
    let done = 0;
    const more = h("button", { class: "more", type: "button" });
    function add(n) {
      const stop = Math.min(rows.length, done + n);
      for (; done < stop; done++) body.append(drawRow(t, rows[done], withModule));
      more.textContent = "show " + fmt(Math.min(PAGE * 2, rows.length - done)) + " more of "
        + fmt(rows.length - done);
      more.hidden = done >= rows.length;
    }
    more.addEventListener("click", () => add(PAGE * 2));
    wrap.append(more);
    add(Math.max(PAGE, upTo || 0));
    return wrap;
  }
  function fillOwn(own) {
    const [l, n] = own.getAttribute("data-node").split("-").map(Number);
    const t = tables[l];
    const rows = t.byNode(n).filter((r) => t.ok(r));
    own.replaceChildren(drawTable(t, rows, false, own.upTo || 0));
    own.filled = true;
  }
  function setupTree() {
    for (const own of document.querySelectorAll("details.mod[open] > .own")) fillOwn(own);
    document.addEventListener("toggle", (ev) => {
      const d = ev.target;
      if (!(d instanceof HTMLDetailsElement) || !d.open) return;
      const own = d.querySelector(":scope > .own");
      if (own && !own.filled) fillOwn(own);
    }, true);
  }

  class Listing {  // every draw of the first log (the show page), filtered
    constructor(box) { this.box = box; }
    render() {
      const t = tables[0], rows = [];
      for (let r = 0; r < t.rows && rows.length < 100000; r++) if (t.ok(r)) rows.push(r);
      this.box.replaceChildren(drawTable(t, rows, true));
    }
  }
  const listBox = document.getElementById("listing");
  const listing = listBox && tables.length ? new Listing(listBox) : null;

  // -- a diff, side by side ------------------------------------------------------------
  function expand(runs, count) {
    const out = [];
    for (const [a, n] of runs) {
      for (let i = 0; i < n && out.length < count; i++) out.push(a + i);
      if (out.length >= count) break;
    }
    return out;
  }
  function side(t, index) {
    if (index === undefined) return [h("td", { class: "empty" }), h("td", { class: "empty" }),
      h("td", { class: "empty" })];
    const r = t.row(index);
    if (r < 0) return [h("td", { text: String(index) }), h("td", { class: "note", text: "(not in the page)" }), h("td")];
    const s = t.sig(r);
    const who = [s[F.module] < 0 ? "-" : (str(s[F.module]) || "(root)"), str(s[F.target])]
      .filter((x) => x).join(" \u2192 ");
    const site = h("td", { class: "code", text: str(s[F.site]), title: str(s[F.code]) });
    return [h("td", { text: String(index) }),
      h("td", { text: who + "  " + str(s[F.op]).replace(/^aten::/, "") + " " + str(s[F.shape])
        + " step " + t.step(r) }), site];
  }
  class SideBySide {
    constructor(box) {
      this.box = box; this.open = new Set(); this.shown = new Map();
      this.select = document.getElementById("stream");
      const first = D.hunks[D.first];
      this.stream = first ? first.g : (D.hunks.length ? D.hunks[0].g : "");
      D.hunks.forEach((hk, k) => { if (hk.k !== "equal" && k < 200) this.open.add(k); });
      if (this.select) {
        this.select.value = this.stream;
        this.select.addEventListener("input", () => { this.stream = this.select.value; this.render(); });
      }
    }
    rowMatches(ia, ib) {
      for (const [t, i] of [[tables[0], ia], [tables[1], ib]]) {
        if (i === undefined) continue;
        const r = t.row(i);
        if (r >= 0 && t.ok(r)) return true;
      }
      return false;
    }
    hunk(k) {
      const hk = D.hunks[k], n = Math.max(hk.an, hk.bn);
      const body = h("tbody", { id: "hunk-" + k, class: k === D.first ? "first" : "" });
      const head = h("th", { colspan: "6", scope: "rowgroup" });
      const span = (a, b, m) => (m === 0 ? "@" + a : b - a === 1 ? String(a) : a + "-" + (b - 1));
      head.append((k === D.first ? "\u25b6 first divergence: " : "") + "hunk #" + k + ", "
        + hk.k + ", " + fmt(n) + (n === 1 ? " draw" : " draws") + " (A "
        + span(hk.ai, hk.as, hk.an) + ", B " + span(hk.bi, hk.bs, hk.bn) + ")  ");
      if (hk.c !== null && hk.c !== undefined) {
        head.append(h("a", { href: "#cause-" + hk.c, text: "cause #" + hk.c }), "  ");
      }
      const toggle = h("button", { class: "more", type: "button",
        text: this.open.has(k) ? "hide" : "show" });
      toggle.addEventListener("click", () => {
        if (this.open.has(k)) this.open.delete(k); else this.open.add(k);
        this.render();
      });
      head.append(toggle);
      body.append(h("tr", { class: "hunk" }, head));
      if (!this.open.has(k)) return body;
      const limit = this.shown.get(k) || PAGE;
      const a = expand(hk.a, limit), b = expand(hk.b, limit);
      for (let i = 0; i < Math.min(n, limit); i++) {
        if (active() && !this.rowMatches(a[i], b[i])) continue;
        body.append(h("tr", { class: hk.k }, ...side(tables[0], a[i]), ...side(tables[1], b[i])));
      }
      if (n > limit) {
        const more = h("button", { class: "more", type: "button",
          text: "show " + fmt(Math.min(PAGE * 5, n - limit)) + " more of " + fmt(n - limit) });
        more.addEventListener("click", () => { this.shown.set(k, limit + PAGE * 5); this.render(); });
        body.append(h("tr", {}, h("td", { colspan: "6" }, more)));
      }
      return body;
    }
    render() {
      const labels = tables.map((t) => t.t.label);
      const table = h("table", { class: "sbs" }, h("thead", {}, h("tr", {},
        h("th", { colspan: "3", class: "side", scope: "col", text: "A: " + labels[0] }),
        h("th", { colspan: "3", class: "side", scope: "col", text: "B: " + labels[1] }))));
      D.hunks.forEach((hk, k) => { if (hk.g === this.stream) table.append(this.hunk(k)); });
      this.box.replaceChildren(table);
    }
    show(k) {
      this.stream = D.hunks[k].g;
      if (this.select) this.select.value = this.stream;
      this.open.add(k);
      this.render();
    }
  }
  const sbsBox = document.getElementById("sbs");
  const sbs = sbsBox && D.hunks && tables.length === 2 ? new SideBySide(sbsBox) : null;

  // -- links to a draw or a hunk -----------------------------------------------------
  function goDraw(l, index) {
    const t = tables[l], r = t && t.row(index);
    if (!t || r < 0) return;
    const node = t.sig(r)[F.node];
    const d = document.querySelector('details.mod[data-node="' + l + "-" + node + '"]');
    if (!d) return;
    for (let up = d; up; up = up.parentElement.closest("details")) up.open = true;
    const own = d.querySelector(":scope > .own");
    const pos = t.byNode(node).filter((x) => t.ok(x)).indexOf(r);
    own.upTo = pos + 1;
    fillOwn(own);
    const row = document.getElementById("draw-" + l + "-" + index);
    if (row) { row.classList.add("target-row"); row.scrollIntoView({ block: "center" }); }
  }
  function follow() {
    const m = /^#(draw|hunk)-(\d+)(?:-(\d+))?$/.exec(location.hash);
    if (!m) return;
    if (m[1] === "draw") goDraw(Number(m[2]), Number(m[3]));
    else if (sbs) {
      sbs.show(Number(m[2]));
      const body = document.getElementById("hunk-" + m[2]);
      if (body) body.scrollIntoView({ block: "start" });
    }
  }

  // -- the picture ---------------------------------------------------------------------
  function setupPicture() {
    const box = document.querySelector(".picture");
    if (!box) return;
    const img = box.querySelector("img");
    let zoom = 1;
    for (const b of document.querySelectorAll(".zoom button")) {
      b.addEventListener("click", () => {
        const z = b.getAttribute("data-zoom");
        box.classList.toggle("fit", z === "fit");
        if (z === "fit") return;
        zoom = z === "in" ? zoom * 1.5 : z === "out" ? zoom / 1.5 : 1;
        img.style.width = Math.round(img.naturalWidth * zoom) + "px";
      });
    }
  }

  setupFilter();
  setupTree();
  setupPicture();
  if (listing) listing.render();
  if (sbs) sbs.render();
  window.addEventListener("hashchange", follow);
  follow();
  document.documentElement.setAttribute("data-ready", "1");
})();
