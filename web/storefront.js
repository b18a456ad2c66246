// The storefront page: a cart, "Place order", "Pay Now" and the outcome,
// through the idempotent client. Settings come from /config.json (make dev
// writes the API's origin and a local token there) and may be overridden in
// the URL: ?api=http://127.0.0.1:3000&token=...; ?order=ID&amount=N&currency=INR
// opens an existing order for payment; ?deadline=ms bounds each call.
import { IdempotentClient } from "./idempotent-client.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const UNIT_PRICE = 250000; // paise

/** @returns {Promise<{api: string, token: string}>} */
async function settings() {
  let cfg = { api: "", token: "" };
  try {
    const r = await fetch("config.json", { cache: "no-store" });
    if (r.ok) cfg = { ...cfg, ...(await r.json()) };
  } catch {
    // a static host without config.json: the URL must say
  }
  return { api: params.get("api") || cfg.api, token: params.get("token") || cfg.token };
}

const rupees = (paise) => "₹" + (paise / 100).toLocaleString("en-IN", { minimumFractionDigits: 2 });

/** The cart's identity: one "place order" operation per cart, kept with the tab. */
function cartID() {
  let id = sessionStorage.getItem("cart");
  if (!id) {
    id = crypto.randomUUID();
    sessionStorage.setItem("cart", id);
  }
  return id;
}

function show(outcome, text, detail = "") {
  $("result").dataset.outcome = outcome;
  $("result").textContent = text;
  $("detail").textContent = detail;
}

/** The order being paid, from the URL or this tab's session. */
function currentOrder() {
  if (params.get("order")) {
    return { order_id: params.get("order"), amount: Number(params.get("amount")), currency: params.get("currency") || "INR" };
  }
  return JSON.parse(sessionStorage.getItem("order") || "null");
}

function showOrder(order) {
  $("cart").hidden = !!order;
  $("checkout").hidden = !order;
  if (order) {
    $("order-id").textContent = order.order_id;
    $("order-amount").textContent = rupees(order.amount);
  }
}

async function main() {
  const { api, token } = await settings();
  $("api").textContent = api || "(none: add ?api=http://127.0.0.1:3000)";
  const deadlineMs = Number(params.get("deadline")) || undefined;
  const client = new IdempotentClient({ baseURL: api, token, deadlineMs });
  showOrder(currentOrder());

  $("qty").addEventListener("input", () => {
    $("total").textContent = rupees(Number($("qty").value) * UNIT_PRICE);
    // The user changed the cart: a new "place order" attempt.
    client.newAttempt("order:" + cartID());
  });

  $("place").addEventListener("click", async () => {
    $("place").textContent = "Placing...";
    const body = { currency: "INR", items: [{ sku: "SKU-1", quantity: Number($("qty").value), unit_price: UNIT_PRICE }] };
    const r = await client.post({ operation: "order:" + cartID(), path: "/orders", body });
    $("place").textContent = "Place order";
    if (r.outcome !== "succeeded") {
      report(r);
      return;
    }
    sessionStorage.setItem("order", JSON.stringify(r.body));
    showOrder(r.body);
    show("", "Order placed. Pay when ready.");
  });

  $("method").addEventListener("change", () => {
    // Another payment method: a new attempt, with a new key (refused
    // while a payment is in flight).
    const order = currentOrder();
    if (order && !client.newAttempt("pay:" + order.order_id)) {
      show("", "A payment is in progress; the method cannot change now.");
    }
  });

  $("pay").addEventListener("click", async () => {
    const order = currentOrder();
    const started = performance.now();
    $("pay").textContent = "Processing...";
    show("processing", "Processing...");
    const body = { order_id: order.order_id, amount: order.amount, currency: order.currency, payment_method: $("method").value };
    const r = await client.post({ operation: "pay:" + order.order_id, path: "/payments", body });
    $("pay").textContent = "Pay Now";
    $("result").dataset.ms = String(Math.round(performance.now() - started));
    $("result").dataset.key = r.key;
    $("result").dataset.attempts = String(r.attempts);
    if (r.outcome === "declined") {
      // Final for this attempt: the next click is a new attempt.
      client.newAttempt("pay:" + order.order_id);
    }
    report(r);
  });

  $("new-cart").addEventListener("click", () => {
    sessionStorage.clear();
    location.search = params.get("api") ? "?api=" + encodeURIComponent(params.get("api")) : "";
  });
}

/** @param {import("./idempotent-client.js").Result} r */
function report(r) {
  const detail = `key ${r.key} · ${r.attempts} request(s) · status ${r.status}`;
  $("result").dataset.paymentId = r.body?.payment_id ?? "";
  $("result").dataset.replayed = String(r.replayed);
  switch (r.outcome) {
    case "succeeded":
      if (r.body?.payment_id) {
        show(r.outcome, `Paid ${rupees(r.body.amount)}: payment ${r.body.payment_id}` + (r.replayed ? " (replayed: an earlier request with this key paid)" : ""), detail);
      } else {
        show(r.outcome, `Done (${r.status})`, detail);
      }
      break;
    case "already-paid":
      show(r.outcome, `Already paid by another request: payment ${r.body.payment_id}. You were not charged again.`, detail);
      break;
    case "declined":
      show(r.outcome, `Declined${r.body?.decline_code ? " (" + r.body.decline_code + ")" : ""}. Choose another method and pay again.`, detail);
      break;
    case "gave-up":
      show(r.outcome, `No answer yet (${r.error ?? "status " + r.status}). Pay Now again continues the same payment: you will not be charged twice.`, detail);
      break;
    case "programming-error":
      console.error("idempotent client: programming error", r);
      show(r.outcome, `Something is wrong with this page (${r.error ?? r.problem ?? r.status}).`, detail);
      break;
    default:
      console.error("idempotent client: final answer", r);
      show(r.outcome, `${r.status} ${r.problem ?? ""} ${r.body?.detail ?? r.error ?? ""}`.trim(), detail);
  }
}

main();
