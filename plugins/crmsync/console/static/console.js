// crmsync console: confirmations, actions and run notifications. No build step, no library.
// Every text from the CRM is put on the page with textContent, never as HTML.
"use strict";

(function () {
  const root = document.body.dataset.root;
  const dialog = document.getElementById("confirm");

  // Ask first: resolves true when the person pressed Confirm.
  function confirmFirst(text, okLabel) {
    document.getElementById("confirm-text").textContent = text;
    document.getElementById("confirm-ok").textContent = okLabel || "Confirm";
    dialog.returnValue = "";
    dialog.showModal();
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    });
  }

  function notify(kind, parts) {
    const box = document.createElement("div");
    box.className = "notification " + kind;
    for (const part of parts) {
      if (typeof part === "string") {
        box.append(part);
      } else if (part.outcome !== undefined) {
        const outcome = document.createElement("span");
        outcome.className = "outcome";
        outcome.textContent = part.outcome;
        box.append(outcome);
      } else {
        const link = document.createElement("a");
        link.href = part.href;
        link.textContent = part.text;
        link.target = "_top";  // Airflow's own pages open in Airflow, not inside this frame
        box.append(link);
      }
    }
    const close = document.createElement("button");
    close.className = "close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    close.addEventListener("click", () => box.remove());
    box.append(close);
    document.getElementById("notifications").prepend(box);
    return box;
  }

  async function post(path, body) {
    const response = await fetch(root + path, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body),
    });
    let data = {};
    try { data = await response.json(); } catch (e) { data = { detail: response.statusText }; }
    return { status: response.status, data };
  }

  // Start a run of dagId with conf, after the person confirmed `question`; follow it to its end.
  async function startRun(dagId, conf, question, okLabel) {
    if (!(await confirmFirst(question, okLabel))) return null;
    let answer = await post("/api/trigger", { dag_id: dagId, conf });
    if (answer.status === 409 && answer.data.paused) {
      if (!(await confirmFirst(answer.data.detail, "Unpause and run"))) return null;
      answer = await post("/api/trigger", { dag_id: dagId, conf, unpause: true });
    }
    if (answer.status !== 201) {
      notify("error", ["Not started: " + (answer.data.detail || ("HTTP " + answer.status))]);
      return null;
    }
    const run = answer.data;
    const box = notify("running", [dagId + " started: ", { href: run.airflow_url, text: run.dag_run_id }, " — ",
                                   { outcome: "Waiting for a worker ..." }]);
    follow(run, box);
    return run;
  }

  async function follow(run, box) {
    const url = root + "/api/runs/" + encodeURIComponent(run.dag_id) + "/" + encodeURIComponent(run.dag_run_id);
    for (;;) {
      await new Promise((r) => setTimeout(r, 1500));
      let state;
      try {
        const response = await fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } });
        state = await response.json();
        if (!response.ok) throw new Error(state.detail || response.statusText);
      } catch (e) {
        continue;  // the api-server restarting, say: try again
      }
      box.querySelector(".outcome").textContent = state.outcome;
      if (state.finished) {
        const failed = state.state === "failed" || (state.counts && state.counts.status === "failed");
        const partial = state.counts && state.counts.status === "warning";
        box.className = "notification " + (failed ? "error" : partial ? "warning" : "success");
        box.dataset.state = state.state;
        return;
      }
    }
  }

  // Links to Airflow's own pages (target="_top": a run, an approval) must open in Airflow's
  // window. Airflow shows the console in a sandboxed frame without allow-top-navigation, where
  // the browser refuses such a link; Airflow's UI is a single-page app on the same origin, so
  // change its address and let its router show the page.
  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[target=_top]");
    if (!link || window.top === window || event.defaultPrevented || event.button !== 0
        || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    let top, url;
    try {
      top = window.top;
      url = new URL(link.href, top.location.href);
      if (url.origin !== top.location.origin) return;  // another site's frame: the browser decides
    } catch (e) {
      return;
    }
    event.preventDefault();
    try {
      top.location.assign(url.href);  // allowed when the frame is not sandboxed
    } catch (e) {
      top.history.pushState(null, "", url.pathname + url.search + url.hash);
      top.dispatchEvent(new PopStateEvent("popstate", { state: null }));
    }
  });

  function picked() {
    return Array.from(document.querySelectorAll("input.pick:checked"));
  }

  function refreshSelection() {
    const count = picked().length;
    const label = document.getElementById("selected-count");
    if (label) label.textContent = count + " selected";
    for (const id of ["push-selected", "retry-selected", "ignore-selected"]) {
      const button = document.getElementById(id);
      if (button) button.disabled = count === 0;
    }
  }

  const plural = (n, word) => n + " " + word + (n === 1 ? "" : "s");

  document.addEventListener("change", (event) => {
    if (event.target.id === "select-all") {
      for (const box of document.querySelectorAll("input.pick")) box.checked = event.target.checked;
    }
    if (event.target.matches("input.pick, #select-all")) refreshSelection();
  });

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button");
    if (!button || button.closest("dialog")) return;

    if (button.dataset.trigger) {  // the header's Pull from CRM / Bidirectional sync
      await startRun(button.dataset.trigger, {}, button.dataset.confirm, button.textContent.trim());
    } else if (button.classList.contains("row-push")) {
      const id = Number(button.dataset.id);
      await startRun("crm_push_customers", { customer_ids: [id] },
                     "Push " + button.dataset.name + " (local id " + id + ") to the CRM?", "Push");
    } else if (button.id === "push-selected") {
      const rows = picked().map((box) => box.closest("tr"));
      const ids = rows.map((row) => Number(row.dataset.id));
      const names = rows.slice(0, 3).map((row) => row.dataset.name).join(", ");
      const more = rows.length > 3 ? " and " + (rows.length - 3) + " more" : "";
      await startRun("crm_push_customers", { customer_ids: ids },
                     "Push " + plural(ids.length, "customer") + " to the CRM: " + names + more + "?", "Push");
    } else if (button.id === "retry-selected") {
      const rows = picked().map((box) => box.closest("tr"));
      const ids = [...new Set(rows.filter((r) => r.dataset.phase === "push" && r.dataset.customerId)
                                  .map((r) => Number(r.dataset.customerId)))];
      if (ids.length === 0) {
        notify("warning", ["Records of the pull phase are retried by the next pull: start one from the Customers page."]);
        return;
      }
      await startRun("crm_push_customers", { customer_ids: ids },
                     "Push " + plural(ids.length, "customer") + " again now?", "Retry now");
    } else if (button.id === "ignore-selected") {
      const ids = picked().map((box) => Number(box.value));
      if (!(await confirmFirst("Ignore " + plural(ids.length, "record") + "? No run will retry them.", "Ignore"))) return;
      const answer = await post("/api/errors/ignore", { error_ids: ids });
      if (answer.status !== 200) {
        notify("error", ["Not ignored: " + (answer.data.detail || ("HTTP " + answer.status))]);
        return;
      }
      notify("success", ["Ignored " + plural(answer.data.ignored.length, "record") + "."]);
      for (const box of picked()) box.closest("tr").remove();
      refreshSelection();
    } else if (button.classList.contains("resolve")) {
      const section = button.closest("section");
      const keep = button.dataset.keep;
      const question = keep === "crm"
        ? "Take the CRM's version of " + section.dataset.name + "?"
        : "Keep the local version of " + section.dataset.name + " and push it to the CRM?";
      const run = await startRun("crm_resolve_conflicts",
                                 { conflict_ids: [Number(section.dataset.conflictId)], keep }, question, "Resolve");
      if (run) for (const b of section.querySelectorAll("button.resolve")) b.disabled = true;
    } else if (button.classList.contains("link-pair")) {
      const section = button.closest("section");
      const local = Number(button.dataset.local), crm = button.dataset.crm;
      const run = await startRun("crm_link_customers", { links: [[local, crm]] },
                                 "Link " + button.dataset.localName + " (local id " + local + ") and " +
                                 button.dataset.crmName + " (CRM id " + crm + ") as one customer?", "Link");
      if (run) for (const b of section.querySelectorAll("button")) b.disabled = true;
    } else if (button.classList.contains("separate")) {
      const run = await startRun("crm_link_customers", { separate: [Number(button.dataset.matchId)] },
                                 button.dataset.name + " is a different customer from every candidate shown? " +
                                 "It then crosses as a new customer at the next sync.", "Different customers");
      if (run) button.disabled = true;
    }
  });
})();
