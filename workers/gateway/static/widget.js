/*
 * hitl-workers feedback widget: 👍 / 👎 under an assistant's answer, posted to the gateway's
 * /v1/feedback. No build step, no dependencies. Include it and call attach once per answer:
 *
 *   <script src="https://gateway.example/widget.js"></script>
 *   <script>
 *     HitlFeedback.attach(document.querySelector("#answer-1"), {
 *       endpoint: "https://gateway.example",      // the gateway's base URL
 *       sessionId: "session-42",                   // the chat session the answer belongs to
 *       question: "…", answer: "…",
 *       contexts: [{doc_id: "kb-1", text: "…", score: 0.8}],   // the retrieved contexts
 *       model: {name: "support-assistant", version: "2026-10"},
 *       promptVersion: "rag-v7", userId: "user-7",             // optional
 *       token: "…",                                            // optional bearer token
 *     });
 *   </script>
 *
 * On 👎 the person may pick what was wrong and write a comment. The Feedback event has one
 * free-text field, so the choice is put in front of the comment in brackets:
 * "[outdated] the limit changed in May" ("[outdated]" alone, or just the text, when one is empty).
 * Each vote gets its event id in the browser, so the one retry (after a network failure or a 5xx,
 * and once the browser is back online) cannot store the vote twice.
 */
(function (global) {
  "use strict";

  var REASONS = [
    ["incorrect", "Incorrect"],
    ["outdated", "Outdated"],
    ["incomplete", "Incomplete"],
    ["irrelevant_sources", "Wrong sources"],
    ["other", "Something else"],
  ];
  var RETRY_DELAY_MS = 2000;
  var OFFLINE_WAIT_MS = 30000;
  var STYLE =
    ".hitl-feedback{margin-top:.5rem;font:inherit;font-size:.9rem}" +
    ".hitl-feedback button{font:inherit;cursor:pointer;border:1px solid #bbb;background:#fff;" +
    "border-radius:.4rem;padding:.15rem .5rem;margin-right:.25rem}" +
    ".hitl-feedback button[aria-pressed=true]{background:#e6f0ff;border-color:#36c}" +
    ".hitl-feedback button:focus-visible,.hitl-feedback textarea:focus-visible," +
    ".hitl-feedback input:focus-visible{outline:2px solid #36c;outline-offset:2px}" +
    ".hitl-feedback fieldset{border:0;padding:0;margin:.5rem 0}" +
    ".hitl-feedback fieldset label{margin-right:.75rem;white-space:nowrap}" +
    ".hitl-feedback textarea{display:block;width:100%;max-width:32rem;min-height:3rem;margin:.25rem 0}" +
    ".hitl-feedback [role=status]{min-height:1.2em;margin:.25rem 0;color:#333}";
  var counter = 0;

  function injectStyle() {
    if (document.getElementById("hitl-feedback-style")) return;
    var style = document.createElement("style");
    style.id = "hitl-feedback-style";
    style.textContent = STYLE;
    document.head.appendChild(style);
  }

  function uuid4() {
    if (global.crypto && typeof global.crypto.randomUUID === "function") return global.crypto.randomUUID();
    var bytes = new Uint8Array(16);
    global.crypto.getRandomValues(bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) { return (b + 0x100).toString(16).slice(1); });
    return [hex.slice(0, 4), hex.slice(4, 6), hex.slice(6, 8), hex.slice(8, 10), hex.slice(10)]
      .map(function (part) { return part.join(""); }).join("-");
  }

  function element(tag, attributes, text) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) { node.setAttribute(name, attributes[name]); });
    if (text) node.textContent = text;
    return node;
  }

  /** The comment as the Feedback event carries it: "[reason] text". */
  function commentOf(reason, text) {
    var trimmed = (text || "").trim();
    if (reason && trimmed) return "[" + reason + "] " + trimmed;
    if (reason) return "[" + reason + "]";
    return trimmed || null;
  }

  function waitUntilOnline() {
    if (global.navigator.onLine !== false) return Promise.resolve();
    return new Promise(function (resolve) {
      var timer = setTimeout(resolve, OFFLINE_WAIT_MS);
      global.addEventListener("online", function () { clearTimeout(timer); resolve(); }, { once: true });
    });
  }

  function post(options, event) {
    var headers = { "Content-Type": "application/json" };
    if (options.token) headers.Authorization = "Bearer " + options.token;
    var url = String(options.endpoint || "").replace(/\/+$/, "") + "/v1/feedback";
    return fetch(url, { method: "POST", headers: headers, body: JSON.stringify(event), keepalive: true });
  }

  /** Posts the event; retries once after a network failure, a 5xx or a 429. Resolves to true when sent. */
  function send(options, event) {
    function attempt() {
      return post(options, event).then(
        function (response) { return { done: response.status === 202, retry: response.status >= 500 || response.status === 429 }; },
        function () { return { done: false, retry: true }; }
      );
    }
    return attempt().then(function (first) {
      if (first.done || !first.retry) return first.done;
      return waitUntilOnline()
        .then(function () { return new Promise(function (resolve) { setTimeout(resolve, RETRY_DELAY_MS); }); })
        .then(attempt)
        .then(function (second) { return second.done; });
    });
  }

  function attach(target, options) {
    if (!target) throw new Error("HitlFeedback.attach: no element to attach to");
    injectStyle();
    var id = "hitl-feedback-" + ++counter;
    var root = element("div", { class: "hitl-feedback", role: "group", "aria-labelledby": id + "-prompt" });
    var prompt = element("span", { id: id + "-prompt" }, "Was this answer helpful? ");
    var up = element("button", { type: "button", "aria-pressed": "false", "aria-label": "Helpful", "data-rating": "up" }, "👍");
    var down = element("button", { type: "button", "aria-pressed": "false", "aria-label": "Not helpful", "data-rating": "down" }, "👎");
    var form = element("form", { "aria-label": "What was wrong with the answer" });
    form.hidden = true;
    var reasons = element("fieldset");
    reasons.appendChild(element("legend", {}, "What was wrong? (optional)"));
    REASONS.forEach(function (pair) {
      var label = element("label");
      var radio = element("input", { type: "radio", name: id + "-reason", value: pair[0] });
      label.appendChild(radio);
      label.appendChild(document.createTextNode(" " + pair[1]));
      reasons.appendChild(label);
    });
    var commentLabel = element("label", { for: id + "-comment" }, "Comment (optional)");
    var comment = element("textarea", { id: id + "-comment", name: "comment", maxlength: "2000" });
    var submit = element("button", { type: "submit" }, "Send feedback");
    var status = element("p", { role: "status", "aria-live": "polite" });
    form.appendChild(reasons);
    form.appendChild(commentLabel);
    form.appendChild(comment);
    form.appendChild(submit);
    [prompt, up, down, form, status].forEach(function (node) { root.appendChild(node); });
    target.appendChild(root);

    function press(rating) {
      up.setAttribute("aria-pressed", String(rating === "up"));
      down.setAttribute("aria-pressed", String(rating === "down"));
    }

    function vote(rating, commentText) {
      var event = {
        event_id: uuid4(),
        occurred_at: new Date().toISOString(),
        session_id: String(options.sessionId),
        question: String(options.question),
        answer: String(options.answer),
        contexts: options.contexts || [],
        rating: rating,
        comment: commentText,
        user_id: options.userId || null,
        model: options.model,
        prompt_version: options.promptVersion || null,
      };
      root.setAttribute("aria-busy", "true");
      status.textContent = "Sending…";
      return send(options, event).then(function (sent) {
        root.removeAttribute("aria-busy");
        root.setAttribute("data-state", sent ? "sent" : "failed");
        status.textContent = sent
          ? "Thank you, your feedback was sent."
          : "Sorry, your feedback could not be sent. Please try again later.";
        return sent;
      });
    }

    up.addEventListener("click", function () {
      press("up");
      form.hidden = true;
      vote("up", null);
    });
    down.addEventListener("click", function () {
      press("down");
      form.hidden = false;
      status.textContent = "";
      comment.focus();
    });
    form.addEventListener("submit", function (domEvent) {
      domEvent.preventDefault();
      var chosen = form.querySelector("input[type=radio]:checked");
      submit.disabled = true;
      vote("down", commentOf(chosen ? chosen.value : null, comment.value)).then(function (sent) {
        submit.disabled = false;
        if (sent) {
          form.hidden = true;
          down.focus();
        }
      });
    });
    return { element: root, vote: vote };
  }

  global.HitlFeedback = { attach: attach, commentOf: commentOf, version: "1" };
})(window);
