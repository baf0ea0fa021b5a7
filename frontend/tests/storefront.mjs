// Browser test of the storefront, in headless Debian Chromium driven by playwright-core.
//
//   BASE_URL=http://127.0.0.1:8080 SCREENSHOT=../target/storefront.png node tests/storefront.mjs
//
// Opens the storefront, waits for the product list, opens the first product, checks that its top
// reviews render with a relevance cue, topic chips and why they are on top, applies a topic filter, checks that nothing
// from the review texts ran as script, checks back/forward and the not-found state, and saves
// screenshots. Exits non-zero with a message on the first failure. Runs against `reviews serve`
// (tests/run.sh --mock starts one on a fixture lake, frontend/dev/serve.sh).

import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const FRONTEND_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BASE_URL = (process.env.BASE_URL || "http://127.0.0.1:8080").replace(/\/+$/, "");
const SCREENSHOT = process.env.SCREENSHOT
  ? path.resolve(process.cwd(), process.env.SCREENSHOT)
  : path.resolve(FRONTEND_DIR, "../target/storefront.png");
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const TIMEOUT_MS = Number(process.env.STOREFRONT_TIMEOUT_MS || 15000);

const results = [];
let failed = 0;

function sibling(file, suffix) {
  const ext = path.extname(file) || ".png";
  return path.join(path.dirname(file), `${path.basename(file, ext)}-${suffix}${ext}`);
}

class CheckError extends Error {}

function assert(condition, message) {
  if (!condition) throw new CheckError(message);
}

async function step(name, fn) {
  const started = Date.now();
  try {
    await fn();
    results.push(name);
    console.log(`  ok   ${name} (${Date.now() - started} ms)`);
  } catch (err) {
    failed++;
    console.error(`  FAIL ${name}: ${err instanceof CheckError ? err.message : (err && err.stack) || err}`);
    throw err;
  }
}

/** Waits for one of the page's settled states; fails with the page's own error text otherwise. */
async function waitForSettled(page, readySelector, what) {
  const errorSelector = "[data-state=error]";
  try {
    await page.waitForSelector(`${readySelector}, ${errorSelector}`, { timeout: TIMEOUT_MS });
  } catch (_) {
    const text = (await page.locator("main").innerText().catch(() => "")).trim().slice(0, 300);
    throw new CheckError(`${what} did not appear within ${TIMEOUT_MS} ms (page shows: ${JSON.stringify(text)})`);
  }
  if (await page.locator(readySelector).count() === 0) {
    const text = (await page.locator(errorSelector).first().innerText()).trim().replace(/\s+/g, " ");
    throw new CheckError(`${what} did not appear; the page shows an error instead: ${JSON.stringify(text)}`);
  }
}

async function main() {
  console.log(`storefront test: ${BASE_URL} (chromium ${CHROMIUM})`);
  mkdirSync(path.dirname(SCREENSHOT), { recursive: true });

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
    ],
    timeout: 60000,
  });
  const pageErrors = [];
  const dialogs = [];
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1, colorScheme: "light" });
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT_MS);
    page.on("pageerror", (err) => pageErrors.push(String(err && err.message || err)));
    page.on("dialog", (dialog) => { dialogs.push(`${dialog.type()}: ${dialog.message()}`); dialog.dismiss().catch(() => {}); });
    // A flag any injected script would set; it must stay unset for the whole run.
    await page.addInitScript(() => { window.__xss = undefined; });

    let productId = "";
    let productHash = "";

    await step("product list renders", async () => {
      const response = await page.goto(`${BASE_URL}/`, { waitUntil: "domcontentloaded" });
      assert(response && response.ok(), `GET ${BASE_URL}/ answered ${response ? response.status() : "nothing"}`);
      await waitForSettled(page, ".product-card", "the product list");
      const count = await page.locator(".product-card").count();
      assert(count > 0, "no product card");
      console.log(`       ${count} product cards on the first page`);
      await page.screenshot({ path: sibling(SCREENSHOT, "list"), fullPage: false });
    });

    await step("opening the first product shows its top reviews", async () => {
      const first = page.locator(".product-card").first();
      productId = await first.getAttribute("data-product-id");
      await first.click();
      await page.waitForFunction(() => location.hash.startsWith("#/product/"));
      productHash = await page.evaluate(() => location.hash);
      await waitForSettled(page, "#reviews[data-state=ready], #reviews[data-state=empty]", "the top reviews");
      const state = await page.locator("#reviews").getAttribute("data-state");
      assert(state === "ready", `the first product (${productId}) shows no reviews (state ${state})`);
      const cards = page.locator(".review-card");
      assert(await cards.count() > 0, "no review card");
      const title = (await page.locator("h1").first().innerText()).trim();
      assert(title.length > 0, "the product page has no title");
      console.log(`       ${productId}: "${title}", ${await cards.count()} review cards`);
    });

    await step("a review card shows a relevance cue, stars and topic chips", async () => {
      const withCue = page.locator(".review-card:has(.relevance .bar-fill):has(.chips .chip)");
      assert(await withCue.count() > 0, "no review card has both a relevance bar and topic chips");
      const card = withCue.first();
      const pct = (await card.locator(".relevance-value").innerText()).trim();
      assert(/^\d{1,3}%$/.test(pct), `relevance value looks wrong: ${JSON.stringify(pct)}`);
      const width = await card.locator(".relevance .bar-fill").evaluate((el) => el.getBoundingClientRect().width);
      const relevance = Number(await card.getAttribute("data-relevance"));
      assert(relevance <= 0 || width > 0, "the relevance bar is empty although relevance > 0");
      assert(await card.locator(".stars[role=img][aria-label]").count() > 0, "no accessible rating stars");
    });

    await step("a top review says why it is on top", async () => {
      const why = page.locator(".review-card .review-why").first();
      assert(await why.count() > 0, "no review card shows why it ranks where it does");
      const text = (await why.innerText()).trim();
      assert(/^Why it's here: \S/.test(text), `the reason line looks wrong: ${JSON.stringify(text)}`);
      console.log(`       ${text}`);
    });

    await step("no script from review text ran, and it shows as text", async () => {
      const flag = await page.evaluate(() => window.__xss);
      assert(flag === undefined, `window.__xss was set to ${JSON.stringify(flag)}: review text was executed`);
      assert(dialogs.length === 0, `a dialog opened: ${dialogs.join("; ")}`);
      const injected = await page.$$eval(".review-text, .review-title, .card-title, .product-title",
        (els) => els.filter((el) => el.children.length > 0).length);
      assert(injected === 0, `${injected} text elements contain markup built from API data`);
      const literal = await page.locator(".review-text", { hasText: "<script>" }).count();
      if (literal > 0) console.log(`       ${literal} review(s) show "<script>" as plain text`);
    });

    await step("the topic filter updates the list", async () => {
      const chips = page.locator(".topic-filter a.chip[data-topic]:not([data-topic=''])");
      const n = await chips.count();
      assert(n > 0, "the topic filter offers no topic");
      const chip = chips.first();
      const topic = await chip.getAttribute("data-topic");
      const name = (await chip.innerText()).trim();
      await chip.click();
      await page.waitForFunction((t) => new URLSearchParams(location.hash.split("?")[1] || "").get("topic") === t, topic);
      await page.waitForSelector(`#reviews[data-topic="${topic}"]:is([data-state=ready], [data-state=empty], [data-state=error])`);
      const state = await page.locator("#reviews").getAttribute("data-state");
      if (state === "error") {
        const text = (await page.locator("#reviews [data-state=error]").innerText()).replace(/\s+/g, " ");
        throw new CheckError(`filtering by ${topic} failed: ${text}`);
      }
      const current = await page.locator(".topic-filter a.chip[aria-current=true]").getAttribute("data-topic");
      assert(current === topic, `the active filter chip is ${current}, expected ${topic}`);
      if (state === "ready") {
        const cards = await page.locator(".review-card").count();
        const tagged = await page.locator(`.review-card:has(.chips .chip[data-topic="${topic}"])`).count();
        assert(cards > 0, "state ready but no review card");
        assert(tagged === cards, `${cards - tagged} of ${cards} reviews shown for topic ${topic} do not carry that topic`);
        console.log(`       topic "${name}": ${cards} review(s), all tagged ${topic}`);
      } else {
        assert(await page.locator("#reviews .state-empty").isVisible(), "empty state not visible");
        console.log(`       topic "${name}": empty state shown`);
      }
      const focused = await page.evaluate(() => document.activeElement && document.activeElement.closest(".topic-filter") !== null);
      assert(focused, "keyboard focus left the topic filter after filtering");
    });

    await step("back and forward navigation work", async () => {
      await page.goBack();
      await page.waitForFunction((h) => location.hash === h, productHash);
      await page.waitForSelector("#reviews[data-topic='']:is([data-state=ready], [data-state=empty])");
      await page.goBack();
      await waitForSettled(page, ".product-card", "the product list after going back");
      await page.goForward();
      await waitForSettled(page, "#reviews[data-state=ready]", "the product after going forward");
    });

    await step("an unknown product shows a clear message", async () => {
      await page.evaluate(() => { location.hash = "#/product/B0NOTFOUND"; });
      await page.waitForSelector("[data-state=error]");
      const code = await page.locator("[data-state=error]").getAttribute("data-error-code");
      const text = (await page.locator("[data-state=error]").innerText()).replace(/\s+/g, " ").trim();
      assert(["not_found", "bad_request"].includes(code), `unexpected error state ${code}: ${text}`);
      assert(await page.locator("[data-state=error] a[href^='#/']").count() > 0, "the not-found state has no way back");
    });

    await step("screenshots saved", async () => {
      await page.mouse.move(0, 0); // no hover state in the picture
      await page.goto(`${BASE_URL}/${productHash}`, { waitUntil: "domcontentloaded" });
      await waitForSettled(page, "#reviews[data-state=ready]", "the product page for the screenshot");
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      await page.setViewportSize({ width: 390, height: 844 });
      await page.screenshot({ path: sibling(SCREENSHOT, "mobile"), fullPage: false });
      console.log(`       ${SCREENSHOT} (+ -list, -mobile)`);
    });

    await step("no uncaught script error, no injected script", async () => {
      assert(pageErrors.length === 0, `uncaught errors in the page: ${pageErrors.join(" | ")}`);
      assert(await page.evaluate(() => window.__xss) === undefined, "window.__xss was set");
      assert(dialogs.length === 0, `a dialog opened: ${dialogs.join("; ")}`);
    });
  } finally {
    await browser.close().catch(() => {});
  }
}

main()
  .then(() => {
    console.log(`storefront: ${results.length} passed, ${failed} failed`);
  })
  .catch((err) => {
    if (!failed) console.error(`storefront test could not run: ${(err && err.stack) || err}`);
    console.log(`storefront: ${results.length} passed, ${Math.max(failed, 1)} failed`);
    process.exitCode = 1;
  });
