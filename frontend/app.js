// Spotlight storefront: a product list and a product page with the most relevant reviews.
//
// Plain browser JavaScript, no build step. Every string that comes from the API is put in the page
// with textContent / text nodes (never innerHTML): review texts are untrusted user content.
// Routing is by location.hash so that back/forward and reloads work on any static host:
//   #/                       product list, page 1
//   #/?page=2&q=blender      product list, page 2, filtered by "blender" (on that page)
//   #/product/<id>           product page, top reviews over all topics
//   #/product/<id>?topic=durability&limit=10
"use strict";

(function () {
  const API_BASE = normalizeBase(window.REVIEWS_API_BASE);
  const PER_PAGE = 24;
  const LIMITS = [5, 10, 20];
  const DEFAULT_LIMIT = 5;
  const REQUEST_TIMEOUT_MS = 10000;
  const LONG_TEXT_CHARS = 420;

  const main = document.getElementById("main");
  const statusEl = document.getElementById("service-status");

  // ---------------------------------------------------------------------------------------------
  // Small utilities

  function normalizeBase(value) {
    if (typeof value !== "string") return "";
    return value.trim().replace(/\/+$/, "");
  }

  /** Builds an element. Children may be nodes, strings (inserted as text), arrays, null. */
  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    setProps(node, props);
    appendChildren(node, children);
    return node;
  }

  function setProps(node, props) {
    if (!props) return;
    for (const [key, value] of Object.entries(props)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "vars") for (const [k, v] of Object.entries(value)) node.style.setProperty(k, v);
      else if (key.startsWith("on") && typeof value === "function") {
        node.addEventListener(key.slice(2), value);
      } else node.setAttribute(key, value === true ? "" : String(value));
    }
  }

  function appendChildren(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
  }

  const SVG_NS = "http://www.w3.org/2000/svg";
  function svgIcon(className, viewBox, pathData) {
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("class", className);
    svg.setAttribute("viewBox", viewBox);
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    const path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", pathData);
    svg.append(path);
    return svg;
  }
  const STAR_PATH = "M12 2.5l2.95 6 6.6.95-4.78 4.65 1.13 6.57L12 17.56l-5.9 3.1 1.13-6.56L2.45 9.45l6.6-.96z";
  const CHECK_PATH = "M9.5 16.2l-4-4 1.4-1.4 2.6 2.6 7.1-7.1 1.4 1.4z";
  const THUMB_PATH = "M2 21h3V9H2v12zm19-11a2 2 0 0 0-2-2h-6.3l1-4.6v-.3c0-.4-.2-.8-.4-1.1L12.2 1 5.6 7.6C5.2 8 5 8.5 5 9v10a2 2 0 0 0 2 2h9c.8 0 1.5-.5 1.8-1.2l3-7.1c.1-.2.2-.5.2-.7v-2z";

  function isObject(v) { return v !== null && typeof v === "object" && !Array.isArray(v); }
  function str(v, fallback = "") { return typeof v === "string" ? v : (v === null || v === undefined ? fallback : String(v)); }
  function num(v, fallback = null) { return typeof v === "number" && Number.isFinite(v) ? v : fallback; }
  function clamp01(v) { return Math.min(1, Math.max(0, v)); }
  function plural(n, one, many) { return `${n.toLocaleString("en")} ${n === 1 ? one : many}`; }
  function percent(v) { return `${Math.round(clamp01(v) * 100)}%`; }

  function positiveInt(value, fallback) {
    if (value === null || !/^\d{1,6}$/.test(value)) return fallback;
    const n = Number(value);
    return n >= 1 ? n : fallback;
  }

  function safeDecode(value) {
    try { return decodeURIComponent(value); } catch (_) { return value; }
  }

  /** "2015-03-02" -> "2 March 2015" (UTC, so no off-by-one day). */
  function formatDate(value) {
    const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(str(value));
    if (!m) return { iso: null, label: str(value) };
    const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
    if (Number.isNaN(d.getTime())) return { iso: null, label: str(value) };
    const label = new Intl.DateTimeFormat("en-GB", { day: "numeric", month: "long", year: "numeric", timeZone: "UTC" }).format(d);
    return { iso: `${m[1]}-${m[2]}-${m[3]}`, label };
  }

  function formatDateTime(value) {
    const d = new Date(str(value));
    if (Number.isNaN(d.getTime())) return str(value);
    return new Intl.DateTimeFormat("en-GB", { dateStyle: "medium", timeStyle: "short" }).format(d);
  }

  /** Stable, pleasant colour for a product tile, from its id. */
  function hueFor(text) {
    let hash = 2166136261;
    for (let i = 0; i < text.length; i++) { hash ^= text.charCodeAt(i); hash = Math.imul(hash, 16777619); }
    return Math.abs(hash) % 360;
  }

  function monogram(title) {
    const letters = str(title).match(/[\p{L}\p{N}]/gu) || ["?"];
    return letters[0].toUpperCase();
  }

  // ---------------------------------------------------------------------------------------------
  // API client

  class ApiError extends Error {
    constructor(kind, status, code, message) {
      super(message);
      this.kind = kind;     // "network" | "timeout" | "http" | "invalid" | "aborted"
      this.status = status; // HTTP status, 0 when there was no response
      this.code = code;     // the API's error.code, or our own
    }
  }

  async function api(path, signal) {
    const ctrl = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; ctrl.abort(); }, REQUEST_TIMEOUT_MS);
    const forwardAbort = () => ctrl.abort();
    if (signal) signal.addEventListener("abort", forwardAbort, { once: true });
    try {
      let response;
      try {
        // Only CORS-safelisted headers: a cross-origin API gets simple GETs, no preflight.
        response = await fetch(API_BASE + path, {
          signal: ctrl.signal,
          headers: { Accept: "application/json" },
          credentials: "omit",
        });
      } catch (err) {
        if (signal && signal.aborted) throw new ApiError("aborted", 0, "aborted", "The request was cancelled.");
        if (timedOut) throw new ApiError("timeout", 0, "timeout", "The review service took too long to answer.");
        throw new ApiError("network", 0, "network", "The review service could not be reached.");
      }
      let body = null;
      try { body = await response.json(); } catch (_) { body = null; }
      if (!response.ok) {
        const err = isObject(body) && isObject(body.error) ? body.error : {};
        const reason = isObject(body) && typeof body.reason === "string" ? body.reason : "";
        const code = str(err.code) || (response.status === 404 ? "not_found" : `http_${response.status}`);
        throw new ApiError("http", response.status, code, str(err.message) || reason || `HTTP ${response.status}`);
      }
      if (!isObject(body)) throw new ApiError("invalid", response.status, "invalid_response", "The review service sent an unexpected answer.");
      return body;
    } finally {
      clearTimeout(timer);
      if (signal) signal.removeEventListener("abort", forwardAbort);
    }
  }

  let topicsCache = null; // Promise<Map<id, name>>
  function loadTopicNames() {
    if (!topicsCache) {
      topicsCache = api("/topics").then((body) => {
        const map = new Map();
        for (const t of Array.isArray(body.topics) ? body.topics : []) {
          if (isObject(t) && t.id) map.set(str(t.id), str(t.name, str(t.id)));
        }
        return map;
      }).catch(() => { topicsCache = null; return new Map(); });
    }
    return topicsCache;
  }

  // ---------------------------------------------------------------------------------------------
  // Routing

  function parseHash() {
    const raw = location.hash.replace(/^#/, "") || "/";
    const q = raw.indexOf("?");
    const path = q >= 0 ? raw.slice(0, q) : raw;
    const params = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : "");
    const segs = path.split("/").filter(Boolean);
    if (segs.length === 0) {
      return { name: "list", page: positiveInt(params.get("page"), 1), q: params.get("q") || "" };
    }
    if (segs[0] === "product" && segs.length === 2) {
      const limit = positiveInt(params.get("limit"), DEFAULT_LIMIT);
      return {
        name: "product",
        id: safeDecode(segs[1]),
        topic: params.get("topic") || null,
        limit: LIMITS.includes(limit) ? limit : DEFAULT_LIMIT,
      };
    }
    return { name: "unknown", path };
  }

  function listHash(page, q) {
    const params = new URLSearchParams();
    if (page > 1) params.set("page", String(page));
    if (q) params.set("q", q);
    const s = params.toString();
    return s ? `#/?${s}` : "#/";
  }

  function productHash(id, topic, limit) {
    const params = new URLSearchParams();
    if (topic) params.set("topic", topic);
    if (limit && limit !== DEFAULT_LIMIT) params.set("limit", String(limit));
    const s = params.toString();
    return `#/product/${encodeURIComponent(id)}${s ? `?${s}` : ""}`;
  }

  const state = {
    token: 0,
    ctrl: null,
    lastListHash: "#/",
    product: null,     // { id, data, view: {...elements} } while the product page is shown
    first: true,
  };

  async function route() {
    if (state.ctrl) state.ctrl.abort();
    const ctrl = new AbortController();
    const token = ++state.token;
    state.ctrl = ctrl;
    const ctx = { signal: ctrl.signal, stale: () => token !== state.token };
    const r = parseHash();
    try {
      if (r.name === "list") {
        state.lastListHash = listHash(r.page, r.q);
        state.product = null;
        await showList(r, ctx);
      } else if (r.name === "product") {
        await showProduct(r, ctx);
      } else {
        state.product = null;
        showPage("Page not found", notFoundView());
      }
    } catch (err) {
      if (ctx.stale() || (err instanceof ApiError && err.kind === "aborted")) return;
      state.product = null;
      if (!(err instanceof ApiError)) console.error(err);
      const box = errorView(err);
      showPage(box.querySelector("h1").textContent, box);
    }
  }

  /** Replaces the page content and moves focus to its heading (except on first load). */
  function showPage(title, content) {
    document.title = `${title} · Spotlight`;
    main.replaceChildren(content);
    main.setAttribute("aria-busy", "false");
    if (state.first) { state.first = false; return; }
    const heading = main.querySelector("h1");
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: true });
    }
    window.scrollTo(0, 0);
  }

  function showLoading(message) {
    main.setAttribute("aria-busy", "true");
    main.replaceChildren(h("div", { class: "state state-loading", dataset: { state: "loading" } },
      h("span", { class: "spinner", "aria-hidden": "true" }),
      h("p", null, message)));
  }

  // ---------------------------------------------------------------------------------------------
  // Shared components

  function stars(rating, { size = "sm", label } = {}) {
    const value = num(rating, 0);
    const pct = `${(clamp01(value / 5) * 100).toFixed(1)}%`;
    const row = () => h("span", { class: "stars-row" }, [0, 1, 2, 3, 4].map(() => svgIcon("star", "0 0 24 24", STAR_PATH)));
    return h("span", {
      class: `stars stars-${size}`,
      role: "img",
      "aria-label": label || `Rated ${value.toFixed(1).replace(/\.0$/, "")} out of 5`,
      vars: { "--fill": pct },
    }, row(), h("span", { class: "stars-fill", "aria-hidden": "true" }, row()));
  }

  function productTile(product, size) {
    const id = str(product.product_id);
    const title = str(product.title) || id;
    return h("span", {
      class: `tile tile-${size}`,
      "aria-hidden": "true",
      vars: { "--hue": String(hueFor(id || title)) },
    }, monogram(title));
  }

  function stateBox(kind, { title, message, actions = [], code, level = "h1" }) {
    return h("div", {
      class: `state state-${kind}`,
      dataset: { state: kind, errorCode: code || null },
      role: kind === "error" ? "alert" : null,
    },
    h(level, { class: "state-title" }, title),
    message ? h("p", { class: "state-message" }, message) : null,
    actions.length ? h("div", { class: "state-actions" }, actions) : null);
  }

  function retryButton() {
    return h("button", { type: "button", class: "button", onclick: () => { refreshStatus(); route(); } }, "Try again");
  }

  function backToListLink(label = "Back to all products") {
    return h("a", { class: "button button-quiet", href: state.lastListHash }, label);
  }

  /** The error state for an API failure. `options.title`/`actions` override the defaults. */
  function errorView(err, { productId, level = "h1", title, actions } = {}) {
    const spec = errorSpec(err, productId);
    return stateBox("error", {
      ...spec,
      level,
      title: title || spec.title,
      actions: actions || spec.actions,
    });
  }

  function errorSpec(err, productId) {
    const api = err instanceof ApiError;
    if (api && err.kind === "http" && err.status === 404 && productId !== undefined) {
      return {
        code: "not_found",
        title: "Product not found",
        message: `We couldn't find a product with the ID “${productId}”. It may have been removed, or the link may be mistyped.`,
        actions: [backToListLink()],
      };
    }
    if (api && err.kind === "http" && err.status === 400) {
      return {
        code: err.code || "bad_request",
        title: "That link doesn't look right",
        message: `The review service could not use this request: ${err.message}`,
        actions: [backToListLink()],
      };
    }
    if (api && err.kind === "http" && err.status === 503) {
      return {
        code: err.code,
        title: "Reviews are temporarily unavailable",
        message: `The review service is up but has no data to serve right now (${err.message}). Please try again in a moment.`,
        actions: [retryButton()],
      };
    }
    if (api && (err.kind === "network" || err.kind === "timeout")) {
      return {
        code: err.code,
        title: "We can't reach the review service",
        message: `${err.message} Check your connection, or try again in a moment.`,
        actions: [retryButton()],
      };
    }
    return {
      code: api ? err.code : "client_error",
      title: "Something went wrong",
      message: api ? err.message : "An unexpected error happened while showing this page.",
      actions: [retryButton(), backToListLink()],
    };
  }

  function notFoundView() {
    return stateBox("error", {
      code: "not_found",
      title: "Page not found",
      message: "There is nothing at this address.",
      actions: [backToListLink("Go to all products")],
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Product list

  async function showList(r, ctx) {
    showLoading("Loading products…");
    const body = await api(`/products?page=${r.page}&per_page=${PER_PAGE}`, ctx.signal);
    if (ctx.stale()) return;

    const products = (Array.isArray(body.products) ? body.products : []).filter(isObject);
    const perPage = num(body.per_page, PER_PAGE) || PER_PAGE;
    const total = num(body.total, products.length);
    const page = num(body.page, r.page);
    const pages = Math.max(1, Math.ceil(total / perPage));

    const heading = h("div", { class: "page-head" },
      h("h1", null, "Products"),
      h("p", { class: "lede" }, total > 0
        ? `${plural(total, "product", "products")} with their most relevant reviews. Pick one to see what customers say about it.`
        : "No products yet."));

    if (products.length === 0) {
      const content = total > 0 && page > pages
        ? stateBox("empty", {
          level: "h2",
          title: "This page is empty",
          message: `There are only ${plural(pages, "page", "pages")} of products.`,
          actions: [h("a", { class: "button", href: listHash(pages, "") }, "Go to the last page")],
        })
        : stateBox("empty", {
          level: "h2",
          title: "No products to show yet",
          message: "The catalogue is empty. Once the review pipeline has published a dataset, products will appear here.",
          actions: [retryButton()],
        });
      showPage("Products", h("div", null, heading, content));
      return;
    }

    const searchId = "product-search";
    const search = h("input", {
      id: searchId, type: "search", class: "search-input", value: r.q,
      placeholder: "Title, category or ID", autocomplete: "off", spellcheck: "false",
      "aria-describedby": "search-count",
    });
    const count = h("p", { id: "search-count", class: "search-count", "aria-live": "polite" });
    const grid = h("ul", { class: "product-grid", "aria-label": "Products" });
    const noMatchMessage = h("p", { class: "state-message" });
    const noMatch = h("div", { class: "state state-empty", dataset: { state: "empty" }, hidden: true },
      h("h2", { class: "state-title" }, "No matches on this page"),
      noMatchMessage,
      h("div", { class: "state-actions" },
        h("button", { type: "button", class: "button button-quiet", onclick: () => { search.value = ""; applyFilter(); search.focus(); } }, "Clear the search")));

    const cards = products.map((p) => {
      const card = productCard(p);
      const haystack = [p.title, p.category, p.product_id].map((v) => str(v).toLocaleLowerCase()).join(" ");
      return { li: h("li", null, card), haystack };
    });
    cards.forEach((c) => grid.append(c.li));

    const applyFilter = () => {
      const needle = search.value.trim().toLocaleLowerCase();
      let shown = 0;
      for (const c of cards) {
        const match = !needle || c.haystack.includes(needle);
        c.li.hidden = !match;
        if (match) shown++;
      }
      count.textContent = needle
        ? `${shown} of ${products.length} products on this page match.`
        : `Showing ${(page - 1) * perPage + 1}–${(page - 1) * perPage + products.length} of ${total.toLocaleString("en")}.`;
      noMatch.hidden = shown > 0;
      noMatchMessage.textContent = `Nothing on this page matches “${search.value.trim()}”. Try another word, or another page.`;
      state.lastListHash = listHash(page, search.value.trim());
      history.replaceState(null, "", state.lastListHash);
    };
    search.addEventListener("input", applyFilter);

    const toolbar = h("div", { class: "toolbar" },
      h("div", { class: "field" },
        h("label", { for: searchId }, "Search this page"),
        search),
      count);

    const content = h("div", null, heading, toolbar, grid, noMatch, pagination(page, pages));
    showPage(page > 1 ? `Products, page ${page}` : "Products", content);
    applyFilter();
  }

  function productCard(p) {
    const id = str(p.product_id);
    const title = str(p.title) || id;
    const reviews = num(p.review_count, 0);
    const avg = num(p.average_rating);
    return h("a", { class: "product-card", href: productHash(id), dataset: { productId: id } },
      productTile(p, "md"),
      h("div", { class: "card-body" },
        p.category ? h("p", { class: "category" }, str(p.category)) : null,
        h("h2", { class: "card-title" }, title),
        h("p", { class: "card-meta" },
          avg !== null && reviews > 0
            ? [stars(avg), h("span", { class: "rating-value" }, avg.toFixed(1))]
            : null,
          h("span", { class: "muted" }, reviews > 0 ? plural(reviews, "review", "reviews") : "No reviews yet"))));
  }

  function pagination(page, pages) {
    if (pages <= 1) return null;
    const link = (target, label, rel) => (target >= 1 && target <= pages)
      ? h("a", { class: "button button-quiet", href: listHash(target, ""), rel }, label)
      : h("span", { class: "button button-quiet", "aria-disabled": "true" }, label);
    return h("nav", { class: "pagination", "aria-label": "Pages of products" },
      link(page - 1, "← Previous", "prev"),
      h("span", { class: "page-info", "aria-current": "page" }, `Page ${page} of ${pages}`),
      link(page + 1, "Next →", "next"));
  }

  // ---------------------------------------------------------------------------------------------
  // Product page

  async function showProduct(r, ctx) {
    // Same product, only the topic or the number of reviews changed: update the reviews in place
    // so that keyboard focus stays on the filter the user just used.
    if (state.product && state.product.id === r.id && main.contains(state.product.view.section)) {
      await loadReviews(r, ctx);
      return;
    }
    state.product = null;
    showLoading("Loading product…");
    let product;
    try {
      product = await api(`/products/${encodeURIComponent(r.id)}`, ctx.signal);
    } catch (err) {
      if (ctx.stale() || (err instanceof ApiError && err.kind === "aborted")) return;
      if (!(err instanceof ApiError)) console.error(err);
      const box = errorView(err, { productId: r.id });
      showPage(box.querySelector("h1").textContent, box);
      return;
    }
    if (ctx.stale()) return;
    const topicNames = await loadTopicNames();
    if (ctx.stale()) return;

    const view = renderProduct(r, product, topicNames);
    state.product = { id: r.id, data: product, topicNames, view };
    showPage(str(product.title) || r.id, view.root);
    await loadReviews(r, ctx);
  }

  function productTopics(product, topicNames) {
    const topics = (Array.isArray(product.topics) ? product.topics : [])
      .filter((t) => isObject(t) && t.id)
      .map((t) => ({ id: str(t.id), name: str(t.name) || topicNames.get(str(t.id)) || str(t.id), share: num(t.share) }));
    topics.sort((a, b) => (b.share || 0) - (a.share || 0));
    return topics;
  }

  function renderProduct(r, product, topicNames) {
    const id = str(product.product_id, r.id);
    const title = str(product.title) || id;
    const reviewsCount = num(product.review_count, 0);
    const avg = num(product.average_rating);
    const topics = productTopics(product, topicNames);

    const hero = h("header", { class: "product-hero" },
      productTile(product, "lg"),
      h("div", { class: "hero-text" },
        product.category ? h("p", { class: "category" }, str(product.category)) : null,
        h("h1", { class: "product-title" }, title),
        h("div", { class: "hero-meta" },
          avg !== null && reviewsCount > 0
            ? [stars(avg, { size: "md" }), h("span", { class: "rating-value rating-big" }, avg.toFixed(1)),
              h("span", { class: "muted" }, `from ${plural(reviewsCount, "review", "reviews")}`)]
            : h("span", { class: "muted" }, "No reviews yet")),
        h("p", { class: "product-id" }, "Product ID ", h("code", null, id))));

    const summary = h("aside", { class: "summary", "aria-label": "Rating summary" },
      histogram(product.rating_histogram, reviewsCount),
      topicShares(id, topics));

    const filter = h("div", { class: "topic-filter", role: "group", "aria-labelledby": "topic-filter-label" });
    const limitId = "review-limit";
    const limitSelect = h("select", { id: limitId, class: "select" },
      LIMITS.map((n) => h("option", { value: String(n) }, `${n} reviews`)));
    limitSelect.addEventListener("change", () => {
      const cur = parseHash();
      location.hash = productHash(id, cur.topic, Number(limitSelect.value));
    });

    const announcer = h("p", { class: "visually-hidden", "aria-live": "polite" });
    const list = h("ol", { class: "review-list" });
    const section = h("section", {
      id: "reviews", class: "reviews", "aria-labelledby": "reviews-heading",
      dataset: { state: "loading", topic: "" },
    },
    h("div", { class: "reviews-head" },
      h("div", null,
        h("h2", { id: "reviews-heading", tabindex: "-1" }, "Top reviews"),
        h("p", { class: "muted small" }, "Ranked by relevance to shoppers.")),
      h("div", { class: "field field-inline" }, h("label", { for: limitId }, "Show"), limitSelect)),
    h("div", { class: "filter-block" },
      h("p", { id: "topic-filter-label", class: "filter-label" }, "Filter by topic"),
      filter),
    announcer,
    list);

    const root = h("article", { class: "product-page", dataset: { productId: id } },
      h("nav", { class: "breadcrumb", "aria-label": "Breadcrumb" },
        h("a", { href: state.lastListHash }, "← All products")),
      hero,
      h("div", { class: "product-layout" }, section, summary));

    const heading = section.querySelector("#reviews-heading");
    return { root, section, heading, list, filter, filterKey: null, limitSelect, announcer, topics, productId: id };
  }

  function histogram(hist, total) {
    const counts = isObject(hist) ? hist : {};
    const sum = [1, 2, 3, 4, 5].reduce((acc, k) => acc + (num(counts[String(k)], 0)), 0) || total || 0;
    const rows = [5, 4, 3, 2, 1].map((k) => {
      const n = num(counts[String(k)], 0);
      const share = sum > 0 ? n / sum : 0;
      return h("li", { class: "hist-row" },
        h("span", { class: "hist-label" }, `${k} star${k === 1 ? "" : "s"}`),
        h("span", { class: "bar", "aria-hidden": "true" }, h("span", { class: "bar-fill bar-gold", vars: { "--pct": percent(share) } })),
        h("span", { class: "hist-count" }, n.toLocaleString("en"), h("span", { class: "visually-hidden" }, n === 1 ? " review" : " reviews")));
    });
    return h("section", { class: "card summary-card", "aria-labelledby": "hist-heading" },
      h("h2", { id: "hist-heading", class: "card-title-sm" }, "Ratings"),
      h("ul", { class: "histogram" }, rows));
  }

  function topicShares(productId, topics) {
    const body = topics.length
      ? h("ul", { class: "topic-shares" }, topics.map((t) => h("li", null,
        h("a", { class: "topic-share", href: productHash(productId, t.id, DEFAULT_LIMIT), dataset: { topic: t.id } },
          h("span", { class: "topic-share-name" }, t.name),
          h("span", { class: "bar", "aria-hidden": "true" }, h("span", { class: "bar-fill", vars: { "--pct": percent(t.share || 0) } })),
          h("span", { class: "topic-share-value" }, t.share !== null ? percent(t.share) : "–",
            h("span", { class: "visually-hidden" }, " of reviews"))))))
      : h("p", { class: "muted small" }, "No topics detected in these reviews yet.");
    return h("section", { class: "card summary-card", "aria-labelledby": "topics-heading" },
      h("h2", { id: "topics-heading", class: "card-title-sm" }, "What reviewers talk about"),
      body);
  }

  function renderFilter(view, r) {
    const known = view.topics.slice();
    if (r.topic && !known.some((t) => t.id === r.topic)) {
      const name = (state.product && state.product.topicNames.get(r.topic)) || r.topic;
      known.push({ id: r.topic, name, share: null });
    }
    const wanted = [{ id: "", name: "All topics" }, ...known];
    const key = wanted.map((t) => t.id).join("\u0000");
    // Rebuild only when the set of topics changes, so that the chip just used keeps the focus.
    if (view.filterKey !== key) {
      view.filterKey = key;
      view.filter.replaceChildren(...wanted.map((t) => h("a", { class: "chip chip-filter", dataset: { topic: t.id } }, t.name)));
    }
    for (const a of view.filter.querySelectorAll("a.chip")) {
      const topicId = a.dataset.topic || null;
      a.href = productHash(view.productId, topicId, r.limit);
      if (topicId === (r.topic || null)) a.setAttribute("aria-current", "true");
      else a.removeAttribute("aria-current");
    }
    for (const a of view.root.querySelectorAll("a.topic-share")) {
      a.href = productHash(view.productId, a.dataset.topic, r.limit);
    }
    view.limitSelect.value = String(r.limit);
  }

  async function loadReviews(r, ctx) {
    const view = state.product.view;
    renderFilter(view, r);
    view.section.dataset.state = "loading";
    view.section.setAttribute("aria-busy", "true");
    const params = new URLSearchParams({ limit: String(r.limit) });
    if (r.topic) params.set("topic", r.topic);
    let body;
    try {
      body = await api(`/reviews/${encodeURIComponent(r.id)}/top?${params}`, ctx.signal);
    } catch (err) {
      if (ctx.stale() || (err instanceof ApiError && err.kind === "aborted")) return;
      view.section.dataset.state = "error";
      view.section.dataset.topic = r.topic || "";
      view.section.setAttribute("aria-busy", "false");
      const badFilter = err instanceof ApiError && err.status === 400 && r.topic;
      const box = errorView(err, {
        productId: r.id,
        level: "h3",
        title: badFilter ? "This topic filter can't be used" : null,
        actions: badFilter ? [h("a", { class: "button", href: productHash(r.id, null, r.limit) }, "Show all topics")] : null,
      });
      view.list.replaceChildren(h("li", { class: "review-list-state" }, box));
      view.announcer.textContent = "The reviews could not be loaded.";
      return;
    }
    if (ctx.stale()) return;

    const reviews = (Array.isArray(body.reviews) ? body.reviews : []).filter(isObject);
    const topicName = r.topic ? (view.topics.find((t) => t.id === r.topic) || {}).name || state.product.topicNames.get(r.topic) || r.topic : null;
    view.section.dataset.topic = r.topic || "";
    view.section.setAttribute("aria-busy", "false");
    if (body.run_id) view.section.dataset.runId = str(body.run_id);

    // A chip inside a review card was used: the card is about to go, keep focus nearby.
    const focusWasInList = view.list.contains(document.activeElement);
    const keepFocus = () => { if (focusWasInList) view.heading.focus({ preventScroll: false }); };

    if (reviews.length === 0) {
      view.section.dataset.state = "empty";
      const box = h("div", { class: "state state-empty", dataset: { state: "empty" } },
        h("h3", { class: "state-title" }, topicName ? `No reviews about “${topicName}” yet` : "No reviews yet"),
        h("p", { class: "state-message" }, topicName
          ? "None of this product's top reviews talk about this topic. Try another topic."
          : "Nobody has reviewed this product yet."),
        topicName ? h("div", { class: "state-actions" },
          h("a", { class: "button", href: productHash(r.id, null, r.limit) }, "Show all topics")) : null);
      view.list.replaceChildren(h("li", { class: "review-list-state" }, box));
      view.announcer.textContent = topicName ? `No reviews about ${topicName}.` : "No reviews yet.";
      keepFocus();
      return;
    }

    view.section.dataset.state = "ready";
    view.list.replaceChildren(...reviews.map((rev, i) => h("li", null, reviewCard(rev, i + 1, r))));
    view.announcer.textContent = `Showing ${plural(reviews.length, "review", "reviews")}${topicName ? ` about ${topicName}` : ""}.`;
    keepFocus();
  }

  function reviewCard(rev, rank, r) {
    const rating = num(rev.rating, 0);
    const title = str(rev.title).trim();
    const text = str(rev.text);
    const relevance = num(rev.relevance, 0);
    const helpful = num(rev.helpful_votes, 0);
    const totalVotes = num(rev.total_votes, 0);
    const date = formatDate(rev.review_date);
    const lang = /^[a-z]{2,3}(-[A-Za-z0-9]{1,8})*$/.test(str(rev.language)) ? str(rev.language) : null;
    const topics = (Array.isArray(rev.topics) ? rev.topics : []).filter((t) => isObject(t) && t.id);
    const reasons = (Array.isArray(rev.reasons) ? rev.reasons : []).map(str).filter((x) => x.trim());
    const headingId = `review-${rank}-title`;

    const textEl = h("p", { class: "review-text", lang });
    textEl.textContent = text;
    let toggle = null;
    if (text.length > LONG_TEXT_CHARS) {
      textEl.classList.add("is-collapsed");
      textEl.id = `review-${rank}-text`;
      toggle = h("button", { type: "button", class: "link-button", "aria-expanded": "false", "aria-controls": textEl.id }, "Read more");
      toggle.addEventListener("click", () => {
        const collapsed = textEl.classList.toggle("is-collapsed");
        toggle.setAttribute("aria-expanded", String(!collapsed));
        toggle.textContent = collapsed ? "Read more" : "Show less";
      });
    }

    const chips = topics.length
      ? h("ul", { class: "chips", "aria-label": "Topics in this review" }, topics.map((t) => {
        const id = str(t.id);
        const score = num(t.score);
        const name = str(t.name) || (state.product && state.product.topicNames.get(id)) || id;
        return h("li", null, h("a", {
          class: "chip",
          href: productHash(r.id, id, r.limit),
          dataset: { topic: id },
          "aria-current": r.topic === id ? "true" : null,
          title: score !== null ? `${name}: topic score ${score.toFixed(2)}. Show reviews about ${name}.` : `Show reviews about ${name}`,
        }, name, score !== null ? h("span", { class: "chip-score" }, percent(score)) : null));
      }))
      : null;

    return h("article", {
      class: "review-card", "aria-labelledby": headingId,
      dataset: { reviewId: str(rev.review_id), relevance: String(relevance) },
    },
    h("header", { class: "review-head" },
      h("span", { class: "rank" }, h("span", { class: "visually-hidden" }, "Rank "), `#${rank}`),
      h("div", { class: "review-head-main" },
        h("div", { class: "review-rating" },
          stars(rating, { label: `${rating} out of 5 stars` }),
          h("h3", { id: headingId, class: "review-title", lang }, title || (rating ? `${rating}-star review` : "Review"))),
        h("p", { class: "review-meta" },
          rev.verified_purchase === true
            ? h("span", { class: "badge badge-verified" }, svgIcon("icon", "0 0 24 24", CHECK_PATH), "Verified purchase")
            : null,
          date.iso ? h("time", { datetime: date.iso }, date.label) : (date.label ? h("span", null, date.label) : null),
          lang && lang !== "en" ? h("span", { class: "badge badge-lang", title: `Written in ${languageName(lang)}` }, lang.toUpperCase()) : null)),
      relevanceCue(relevance)),
    reasons.length
      ? h("p", { class: "review-why" }, h("span", { class: "review-why-label" }, "Why it's here: "), reasons.join(", "))
      : null,
    textEl,
    toggle,
    h("footer", { class: "review-foot" },
      chips,
      h("p", { class: "helpful" },
        svgIcon("icon", "0 0 24 24", THUMB_PATH),
        totalVotes > 0
          ? `${helpful.toLocaleString("en")} of ${plural(totalVotes, "person", "people")} found this helpful`
          : helpful > 0 ? `${plural(helpful, "person", "people")} found this helpful` : "No helpful votes yet")));
  }

  function relevanceCue(relevance) {
    const pct = percent(relevance);
    return h("div", { class: "relevance", title: `Relevance score ${relevance.toFixed(2)}` },
      h("span", { class: "relevance-label" }, "Relevance"),
      h("span", { class: "bar bar-relevance", "aria-hidden": "true" },
        h("span", { class: "bar-fill", vars: { "--pct": pct } })),
      h("span", { class: "relevance-value" }, pct));
  }

  function languageName(code) {
    try { return new Intl.DisplayNames(["en"], { type: "language" }).of(code) || code; } catch (_) { return code; }
  }

  // ---------------------------------------------------------------------------------------------
  // Service status in the footer

  async function refreshStatus() {
    const text = statusEl.querySelector(".status-text");
    try {
      const body = await api("/health");
      statusEl.dataset.status = "ok";
      const parts = ["Review data is live"];
      if (num(body.products) !== null) parts.push(plural(body.products, "product", "products"));
      if (num(body.rows) !== null) parts.push(plural(body.rows, "review", "reviews"));
      if (body.loaded_at) parts.push(`updated ${formatDateTime(body.loaded_at)}`);
      text.textContent = parts.join(" · ");
      statusEl.title = body.run_id ? `Dataset run ${str(body.run_id)}` : "";
    } catch (err) {
      statusEl.dataset.status = "down";
      text.textContent = err instanceof ApiError && err.status === 503
        ? `Review data unavailable: ${err.message}`
        : "The review service is not reachable right now.";
      statusEl.title = "";
    }
  }

  window.addEventListener("hashchange", route);
  refreshStatus();
  route();
})();
