#!/usr/bin/env python3
"""A tiny mock of the reviews API plus a static server for frontend/, for working on the storefront
without the Rust server. Standard library only.

    python3 frontend/dev/mock_server.py              # http://127.0.0.1:8080/
    python3 frontend/dev/mock_server.py --port 8099 --delay 300
    python3 frontend/dev/mock_server.py --down       # every API call answers 503 (error states)

It follows the API contract of the Rust server (docs/ARCHITECTURE.md section 6 and issue 3):
GET /health, /topics, /products?page&per_page, /products/{id}, /reviews/{id}/top?limit&topic,
JSON errors {"error": {"code", "message"}}. Some reviews carry hostile markup on purpose: the page
must show it as text, never run it (the browser test checks window.__xss stays unset).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from datetime import date, datetime, timedelta, timezone
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

FRONTEND = Path(__file__).resolve().parent.parent
RUN_ID = "mock-run-0001"
LOADED_AT = datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
PRODUCT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")

TOPICS = [
    ("product_quality", "Product quality"),
    ("durability", "Durability"),
    ("value_for_money", "Value for money"),
    ("ease_of_use", "Ease of use"),
    ("shipping_delivery", "Shipping & delivery"),
    ("customer_service", "Customer service"),
    ("size_fit", "Size & fit"),
    ("performance", "Performance"),
]
TOPIC_NAMES = dict(TOPICS)

# (category, title) — the first product carries the hostile texts.
CATALOGUE = [
    ("Kitchen", "ProBlend 900 Countertop Blender"),
    ("Kitchen", "Cast Iron Skillet, 12 inch, pre-seasoned"),
    ("Kitchen", "Bouilloire électrique inox 1,7 L"),
    ("Electronics", "Noise-cancelling Wireless Headphones"),
    ("Electronics", "USB-C Charger 65 W, 3 ports"),
    ("Electronics", 'Smart Plug <b>Mini</b> "2-pack" & timer'),
    ("Books", "The Quiet Garden: A Year of Small Harvests"),
    ("Books", "Le Petit Guide de la Cuisine Végétale"),
    ("Outdoors", "Ultralight 2-Person Backpacking Tent"),
    ("Outdoors", "Insulated Steel Water Bottle 750 ml"),
    ("Outdoors", "Trekking Poles, Carbon, Adjustable (pair)"),
    ("Beauty", "Fragrance-free Daily Moisturiser SPF 30"),
    ("Beauty", "Brosse démêlante pour cheveux bouclés"),
    ("Toys", "Wooden Marble Run, 80 pieces"),
    ("Toys", "Build-Your-Own Robot Kit for Ages 8+"),
    ("Home", "Linen Duvet Cover, Queen, Oatmeal"),
    ("Home", "LED Desk Lamp with Wireless Charging Base"),
    ("Home", "Memory Foam Pillow, Contoured, Extra Firm, With a Very Long Name That Keeps Going On"),
    ("Sports", "Yoga Mat 6 mm, Non-slip"),
    ("Sports", "Adjustable Dumbbells 2-24 kg"),
    ("Garden", "Self-watering Planter Set of 3"),
    ("Garden", "Sécateur ergonomique à lame franche"),
    ("Pets", "Orthopedic Dog Bed, Large"),
    ("Pets", "Interactive Cat Puzzle Feeder"),
    ("Office", "Ergonomic Mesh Office Chair"),
    ("Office", "Fountain Pen, Fine Nib, Matte Black"),
    ("Baby", "Convertible Car Seat"),
    ("Music", "Beginner Ukulele Kit, Soprano"),
    ("Tools", "Cordless Drill 18 V with 2 Batteries"),
    ("Tools", "Laser Distance Measure 40 m"),
]

EN_SNIPPETS = {
    "product_quality": [
        "The build quality is excellent: solid materials, tight seams, nothing rattles.",
        "Feels cheap in the hand and the finish scratched within a week.",
    ],
    "durability": [
        "After two years of daily use it still works like the first day.",
        "It broke after three months. The hinge snapped while I was using it normally.",
    ],
    "value_for_money": [
        "For the price this is a steal; I compared it with models twice as expensive.",
        "Overpriced for what you get, honestly.",
    ],
    "ease_of_use": [
        "Set-up took five minutes and the instructions are clear.",
        "The controls are confusing and the manual does not help.",
    ],
    "shipping_delivery": [
        "Arrived a day early and very well packed.",
        "The box arrived crushed and a week late.",
    ],
    "customer_service": [
        "Support replied within hours and sent a replacement part for free.",
        "Customer service never answered my two emails.",
    ],
    "size_fit": [
        "True to size, fits exactly as described.",
        "Runs small, order one size up.",
    ],
    "performance": [
        "Performance is impressive, it handles everything I throw at it.",
        "Underpowered: it struggles as soon as you ask a bit more of it.",
    ],
}

FR_SNIPPETS = {
    "product_quality": ["Très bonne qualité de fabrication, les finitions sont soignées.",
                        "Qualité décevante, le plastique fait bon marché."],
    "durability": ["Toujours impeccable après un an d'utilisation quotidienne.",
                   "Tombé en panne au bout de deux mois, quel dommage."],
    "value_for_money": ["Excellent rapport qualité-prix.", "Trop cher pour ce que c'est."],
    "ease_of_use": ["Très simple à utiliser, même pour mes parents.", "Pas du tout intuitif."],
    "shipping_delivery": ["Livraison rapide et soignée.", "Colis arrivé abîmé et en retard."],
    "customer_service": ["Le service client a été réactif et aimable.", "Service après-vente injoignable."],
    "size_fit": ["La taille correspond parfaitement.", "Taille petit, prenez une taille au-dessus."],
    "performance": ["Des performances au rendez-vous.", "Manque de puissance."],
}

EN_TITLES = ["Exactly what I needed", "Great, with one caveat", "Would buy again", "Not worth it",
             "Solid choice", "Disappointed", "Better than expected", "Does the job"]
FR_TITLES = ["Parfait", "Bon produit mais…", "Je recommande", "Déçu", "Très satisfait"]


def _make_data(seed: int = 42):
    rng = random.Random(seed)
    products, reviews = {}, {}
    for i, (category, title) in enumerate(CATALOGUE):
        pid = f"B00{i:02d}MOCK{rng.randint(10, 99)}"
        n = 0 if i == 6 else (3 if i == 4 else rng.randint(6, 14))
        revs = []
        for j in range(n):
            french = (i in (2, 7, 12, 21)) or rng.random() < 0.15
            k = rng.randint(1, 3)
            chosen = rng.sample(TOPICS, k)
            scores = sorted((round(rng.uniform(0.35, 0.95), 2) for _ in chosen), reverse=True)
            positive = rng.random() < 0.72
            rating = rng.choice([4, 5, 5]) if positive else rng.choice([1, 2, 3])
            snippets = FR_SNIPPETS if french else EN_SNIPPETS
            sentences = [snippets[t][0 if positive else 1] for t, _ in chosen]
            if rng.random() < 0.4:
                text = "\n\n".join(sentences)  # line breaks must survive
            else:
                text = " ".join(sentences)
            if rng.random() < 0.2:
                text += (" " + ("Je l'utilise tous les jours pour toute la famille et je n'ai rien à redire. " if french
                               else "I use it every day for the whole family and I have nothing to complain about. ") * 6)
            total = rng.randint(0, 40)
            helpful = rng.randint(0, total) if total else 0
            revs.append({
                "review_id": f"R{i:02d}{j:03d}{rng.randint(1000, 9999)}",
                "rating": rating,
                "title": rng.choice(FR_TITLES if french else EN_TITLES),
                "text": text,
                "topics": [{"id": t, "name": name, "score": s} for (t, name), s in zip(chosen, scores)],
                "relevance": round(rng.uniform(0.25, 0.97), 2),
                "helpful_votes": helpful,
                "total_votes": total,
                "verified_purchase": rng.random() < 0.7,
                "review_date": (date(2013, 1, 1) + timedelta(days=rng.randint(0, 3000))).isoformat(),
                "language": "fr" if french else "en",
            })
        if i == 0 and revs:
            # Hostile content on the first product: must render as plain text.
            revs[0].update({
                "title": "<img src=x onerror=\"window.__xss=1\"> Best blender <b>ever</b>",
                "text": "<script>window.__xss=1;alert(1)</script>\nIt crushes ice in seconds & the jug is "
                        "dishwasher-safe.\n\n<a href=\"javascript:window.__xss=1\">click</a> "
                        "<iframe src=\"javascript:window.__xss=1\"></iframe>",
                "topics": [{"id": "performance", "name": "Performance", "score": 0.91},
                           {"id": "product_quality", "name": "Product quality", "score": 0.64}],
                "relevance": 0.98, "rating": 5, "verified_purchase": True, "language": "en",
            })
        revs.sort(key=lambda r: r["relevance"], reverse=True)
        reviews[pid] = revs
        hist = {str(s): sum(1 for r in revs if r["rating"] == s) for s in range(1, 6)}
        topic_counts = {}
        for r in revs:
            for t in r["topics"]:
                topic_counts[t["id"]] = topic_counts.get(t["id"], 0) + 1
        products[pid] = {
            "product_id": pid,
            "title": title,
            "category": category,
            "review_count": len(revs),
            "average_rating": round(sum(r["rating"] for r in revs) / len(revs), 2) if revs else None,
            "rating_histogram": hist,
            "topics": [{"id": t, "name": TOPIC_NAMES[t], "share": round(c / len(revs), 3)}
                       for t, c in sorted(topic_counts.items(), key=lambda kv: -kv[1])],
        }
    return products, reviews


PRODUCTS, REVIEWS = _make_data()


class Handler(SimpleHTTPRequestHandler):
    delay_ms = 0
    down = False

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map,
                      ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
                      ".css": "text/css; charset=utf-8", ".html": "text/html; charset=utf-8",
                      ".svg": "image/svg+xml", ".json": "application/json"}

    def log_message(self, fmt, *args):  # quieter, one line per request
        sys.stderr.write("mock %s %s\n" % (self.address_string(), fmt % args))

    # -- plumbing -----------------------------------------------------------------------------
    def _json(self, status: int, body, cache: str = "public, max-age=60"):
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", cache if status == 200 else "no-store")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, status: int, code: str, message: str):
        self._json(status, {"error": {"code": code, "message": message}})

    def end_headers(self):
        if not self.path.split("?")[0].startswith(("/health", "/topics", "/products", "/reviews")):
            # Static files: always revalidate (no content hashes in the file names).
            self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def do_OPTIONS(self):
        self.send_response(204)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "Accept, Content-Type")
        self.send_header("Access-Control-Max-Age", "600")
        self.end_headers()

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        url = urlsplit(self.path)
        path = url.path
        if not path.startswith(("/health", "/topics", "/products", "/reviews", "/openapi.json")):
            if path == "/":
                self.path = "/index.html"
            return super().do_GET() if self.command == "GET" else super().do_HEAD()
        if self.delay_ms:
            time.sleep(self.delay_ms / 1000)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            self._api(path, query)
        except BrokenPipeError:
            pass

    # -- the API ------------------------------------------------------------------------------
    def _api(self, path: str, query: dict):
        if path == "/health":
            if self.down:
                return self._json(503, {"status": "unavailable", "reason": "no valid dataset loaded (mock --down)"},
                                  cache="no-store")
            return self._json(200, {"status": "ok", "run_id": RUN_ID, "rows": sum(map(len, REVIEWS.values())),
                                    "products": len(PRODUCTS), "loaded_at": LOADED_AT}, cache="no-store")
        if self.down:
            return self._error(503, "unavailable", "no valid dataset loaded (mock --down)")
        if path == "/topics":
            return self._json(200, {"topics": [{"id": t, "name": n} for t, n in TOPICS]})
        if path == "/products":
            page = _int(query.get("page", "1"), 1, 100000)
            per_page = _int(query.get("per_page", "24"), 1, 100)
            if page is None or per_page is None:
                return self._error(400, "bad_request", "page must be >= 1 and per_page between 1 and 100")
            items = list(PRODUCTS.values())
            chunk = items[(page - 1) * per_page: page * per_page]
            keys = ("product_id", "title", "category", "review_count", "average_rating")
            return self._json(200, {"page": page, "per_page": per_page, "total": len(items),
                                    "products": [{k: p[k] for k in keys} for p in chunk]})
        m = re.fullmatch(r"/products/([^/]+)", path)
        if m:
            pid = unquote(m.group(1))
            if not PRODUCT_ID_RE.match(pid):
                return self._error(400, "bad_request", "product_id is not a valid product id")
            if pid not in PRODUCTS:
                return self._error(404, "not_found", f"unknown product {pid}")
            return self._json(200, PRODUCTS[pid])
        m = re.fullmatch(r"/reviews/([^/]+)/top", path)
        if m:
            pid = unquote(m.group(1))
            if not PRODUCT_ID_RE.match(pid):
                return self._error(400, "bad_request", "product_id is not a valid product id")
            limit = _int(query.get("limit", "5"), 1, 50)
            if limit is None:
                return self._error(400, "bad_request", "limit must be an integer between 1 and 50")
            topic = query.get("topic") or None
            if topic is not None and topic not in TOPIC_NAMES:
                return self._error(400, "bad_request", f"unknown topic {topic}")
            if pid not in REVIEWS:
                return self._error(404, "not_found", f"unknown product {pid}")
            revs = REVIEWS[pid]
            if topic:
                revs = [r for r in revs if any(t["id"] == topic for t in r["topics"])]
            return self._json(200, {"product_id": pid, "run_id": RUN_ID, "topic": topic, "reviews": revs[:limit]})
        return self._error(404, "not_found", f"no route for {path}")


def _int(value: str, lo: int, hi: int):
    if not re.fullmatch(r"\d{1,7}", value or ""):
        return None
    n = int(value)
    return n if lo <= n <= hi else None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    ap.add_argument("--delay", type=int, default=0, help="milliseconds added to every API answer")
    ap.add_argument("--down", action="store_true", help="answer 503 to every API call")
    args = ap.parse_args(argv)
    Handler.delay_ms = args.delay
    Handler.down = args.down
    server = ThreadingHTTPServer((args.host, args.port), partial(Handler, directory=str(FRONTEND)))
    server.daemon_threads = True
    host, port = server.server_address[:2]
    print(f"mock storefront + API on http://{host}:{port}/ (serving {FRONTEND})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
