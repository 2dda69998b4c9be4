// The wscodec demo chat: plain browser WebSocket API, no framework, no build.
// Everything from the network is put on the page with textContent, never
// innerHTML, so a message can never inject markup.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const WS_URL = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
  const RETRY_DELAYS = [500, 1000, 2000, 3000];  // milliseconds, then the last one again
  const KEEP_LINES = 500;
  // Close codes that mean "you did something wrong": reconnecting would not help.
  const REFUSED = new Set([1003, 1008, 1009]);

  let socket = null;
  let nickname = null;  // what the user asked for
  let me = null;        // what the server gave us
  let attempts = 0;
  let retryTimer = null;

  function setState(state, text) {
    const el = $("state");
    el.dataset.state = state;
    el.textContent = text;
    document.body.dataset.state = state;
    const ready = state === "connected";
    $("text").disabled = !ready;
    $("send").disabled = !ready;
  }

  function timeOf(ms) {
    return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function span(className, text) {
    const el = document.createElement("span");
    el.className = className;
    el.textContent = text;
    return el;
  }

  function addLine(kind, parts, time) {
    const log = $("log");
    const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    const li = document.createElement("li");
    li.className = kind;
    if (time !== undefined) {
      const t = document.createElement("time");
      t.dateTime = new Date(time).toISOString();
      t.textContent = timeOf(time);
      li.appendChild(t);
    }
    for (const part of parts) li.appendChild(part);
    log.appendChild(li);
    while (log.children.length > KEEP_LINES) log.removeChild(log.firstChild);
    if (nearBottom) log.scrollTop = log.scrollHeight;
  }

  // Messages shown, by key, so that a reconnect's history adds only what was missed.
  const shown = new Set();
  const shownOrder = [];

  function messageKey(event) {
    return event.time + "\n" + event.name + "\n" + event.text;
  }

  function showMessage(event) {
    const key = messageKey(event);
    shown.add(key);
    shownOrder.push(key);
    while (shownOrder.length > KEEP_LINES) shown.delete(shownOrder.shift());
    const kind = event.name === me ? "message mine" : "message";
    addLine(kind, [span("name", event.name), span("text", event.text)], event.time);
  }

  function notice(text, time) {
    addLine("notice", [span("text", text)], time);
  }

  // Who is online: the welcome's list, then each join and leave (the
  // server sends names, not the whole list, with those).
  let online = new Set();

  function byName(a, b) {
    const folded = a.toLowerCase().localeCompare(b.toLowerCase());
    return folded !== 0 ? folded : (a < b ? -1 : a > b ? 1 : 0);
  }

  function showUsers() {
    const list = $("users");
    list.replaceChildren();
    for (const name of [...online].sort(byName)) {
      const li = document.createElement("li");
      li.textContent = name;
      if (name === me) li.className = "me";
      list.appendChild(li);
    }
    $("online-count").textContent = String(online.size);
  }

  function showStats(stats) {
    $("stat-backend").textContent = stats.backend;
    $("stat-in").textContent = Number(stats.in_rate).toFixed(1);
    $("stat-out").textContent = Number(stats.out_rate).toFixed(1);
    $("stat-total").textContent = String(stats.messages);
  }

  const handlers = {
    welcome(event) {
      const reconnected = me !== null;
      me = event.name;
      if (reconnected) {
        // Keep the conversation: mark the gap, then add what the history has
        // that this page has not shown (what others said while it was away).
        addLine("notice gap", [span("text",
          "Reconnected — messages sent while disconnected may have been missed.")]);
        for (const message of event.history) {
          if (!shown.has(messageKey(message))) showMessage(message);
        }
      } else {
        $("log").replaceChildren();
        for (const message of event.history) showMessage(message);
      }
      online = new Set(event.users);
      showUsers();
      $("stat-backend").textContent = event.backend;
      notice("You are " + me + ". " + event.users.length + " online.");
      attempts = 0;
      setState("connected", "Connected as " + me);
    },
    join(event) {
      online.add(event.name);
      showUsers();
      if (event.name !== me) notice(event.name + " joined", event.time);
    },
    leave(event) {
      online.delete(event.name);
      showUsers();
      notice(event.name + " left", event.time);
    },
    message: showMessage,
    busy(event) {
      notice(event.text);
    },
    stats: showStats,
  };

  function connect() {
    clearTimeout(retryTimer);
    setState("connecting", "Connecting…");
    socket = new WebSocket(WS_URL);

    socket.onopen = function () {
      socket.send(JSON.stringify({ type: "join", name: nickname }));
    };

    socket.onmessage = function (message) {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch (error) {
        console.warn("not JSON:", message.data);
        return;
      }
      const handler = handlers[event.type];
      if (handler) handler(event);
    };

    socket.onerror = function () {
      // A close event always follows; the state is updated there.
      console.warn("WebSocket error");
    };

    socket.onclose = function (event) {
      socket = null;
      if (REFUSED.has(event.code)) {
        const reason = event.reason || "closed by the server";
        setState("refused", "Disconnected: " + reason + " (" + event.code + ")");
        showJoin(reason);
        return;
      }
      if (attempts === 0 && me !== null) notice("Lost the connection to the server.");
      const delay = RETRY_DELAYS[Math.min(attempts, RETRY_DELAYS.length - 1)];
      attempts += 1;
      const why = event.code === 1001 ? "server went away" : "connection lost";
      setState("disconnected", "Disconnected (" + why + "), reconnecting in " +
        (delay / 1000).toFixed(1) + " s…");
      retryTimer = setTimeout(connect, delay);
    };
  }

  function showJoin(error) {
    const message = $("join-error");
    message.hidden = !error;
    message.textContent = error || "";
    $("join").hidden = false;
    $("nickname").focus();
  }

  $("join-form").addEventListener("submit", function (event) {
    event.preventDefault();
    const name = $("nickname").value.trim();
    if (!name) return;
    nickname = name;
    $("join").hidden = true;
    attempts = 0;
    connect();
    $("text").focus();
  });

  $("composer").addEventListener("submit", function (event) {
    event.preventDefault();
    const input = $("text");
    const text = input.value.trim();
    if (!text || !socket || socket.readyState !== WebSocket.OPEN) return;
    socket.send(JSON.stringify({ type: "message", text: text }));
    input.value = "";
    input.focus();
  });

  window.addEventListener("beforeunload", function () {
    if (socket) socket.close(1000, "page closed");
  });
})();
