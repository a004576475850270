/**
 * The drop-in widgets of {% liverooms_chat %} and {% liverooms_liveblog %}.
 *
 * Loaded by {% liverooms_script %}; mounts every element with a
 * data-liverooms attribute ("chat" or "liveblog") on the page. Call
 * mount(element) yourself for markup added later. Each mounted element gets
 * its Connection (liverooms.js) as element.liverooms.
 *
 * The markup, the strings (translated by Django) and the URLs come from the
 * tag's template; this file only fills it in. User text goes in with
 * textContent; only live blog entry bodies, sanitised by the server, are HTML.
 */
import {connect} from "./liverooms.js";

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function format(template, values) {
  return (template || "").replace(/\{(\w+)\}/g, (_match, key) => String(values[key] ?? ""));
}

function timeEl(iso, dateStyle) {
  const node = el("time");
  const date = new Date(iso);
  node.dateTime = iso;
  node.textContent = date.toLocaleString(document.documentElement.lang || undefined, {
    dateStyle,
    timeStyle: "short",
  });
  return node;
}

function part(root, name) {
  return root.querySelector("[data-liverooms-" + name + "]");
}

/** The connection status line, shared by both widgets. */
function showStatus(root, strings, status) {
  const node = part(root, "status");
  root.dataset.state = status.state;
  let text = strings[status.state] || status.state;
  if (status.state === "open" && status.transport === "sse") text = strings.open_sse;
  if (status.state === "offline" && status.retryIn !== null) {
    text = format(strings.retrying, {seconds: Math.max(1, Math.ceil(status.retryIn / 1000))});
  }
  if (status.state === "closed" && status.code) {
    text = status.code === 4403 ? strings.closed_forbidden : strings.closed_missing;
  }
  if (node) {
    node.textContent = text;
    node.hidden = false; // rendered hidden: without JavaScript nothing connects
  }
}

function showError(root, strings, frame) {
  const node = part(root, "error");
  if (!node || frame.code === "unavailable") return; // sent again by itself
  node.classList.remove("liverooms-notice");
  node.textContent = format(strings["error_" + frame.code] || strings.error, frame);
}

// Not an error ("… is muted"): the same place, styled .liverooms-notice.
function showNotice(root, text) {
  const node = part(root, "error");
  if (!node) return;
  node.classList.add("liverooms-notice");
  node.textContent = text;
}

// A "load older/earlier" button: busy while `load` runs, hidden once it
// resolves true (nothing older), its error shown (strings.error_<name>).
function pageBackOnClick(root, strings, button, name, load) {
  button.addEventListener("click", async () => {
    button.disabled = true;
    button.textContent = strings.loading;
    let complete = false;
    try {
      complete = await load();
    } catch (error) {
      showError(root, strings, {type: "error", code: name, detail: error.message});
    }
    button.hidden = complete;
    button.disabled = false;
    button.textContent = strings[name];
  });
}

// A file's size in the page's language ("12 kB", "1.5 MB").
function fileSize(bytes) {
  const [value, unit] =
    bytes < 1024 ? [bytes, "byte"] : bytes < 1048576 ? [bytes / 1024, "kilobyte"] : [bytes / 1048576, "megabyte"];
  const lang = document.documentElement.lang || undefined;
  return new Intl.NumberFormat(lang, {style: "unit", unit, unitDisplay: "short", maximumFractionDigits: 1}).format(value);
}

// A message's attachments (docs/protocol.md): images inline (lazy, their
// size bounded by liverooms.css), other files as download links with their size.
function attachmentList(items) {
  const list = el("ul", "liverooms-attachments");
  for (const item of items) {
    const href = new URL(item.url, location.href);
    if (!item.url || !WEB_URL.test(href.href)) continue;
    const li = el("li");
    const link = el("a");
    link.href = href.href;
    if (item.type.startsWith("image/")) {
      link.className = "liverooms-attachment-image";
      link.target = "_blank";
      link.rel = "noopener";
      const img = el("img");
      img.src = href.href;
      img.alt = item.name;
      img.loading = "lazy";
      link.append(img);
      li.append(link);
    } else {
      link.className = "liverooms-attachment-file";
      link.download = item.name;
      link.textContent = item.name;
      li.append(link, " ", el("span", "liverooms-attachment-size", fileSize(item.size)));
    }
    list.append(li);
  }
  return list;
}

function mountChat(root, config) {
  const {strings} = config;
  const list = part(root, "messages");
  const form = part(root, "form");
  const input = part(root, "input");
  const button = form && form.querySelector("button");
  const typingEl = part(root, "typing");
  const byId = new Map(); // message id -> <li>
  const mine = new Map(); // client_id -> pending <li>
  const sent = new Map(); // client_id this page sent -> id of the message stored for it
  let typingTimer = null;
  let lastTyping = 0;
  // Attachments: the file input, the uploads waiting for the next message.
  const fileInput = part(root, "file");
  const attach = part(root, "attach");
  const readyList = part(root, "ready");
  const ready = []; // uploaded attachments ({id, name, type, size, url}) to send
  let uploading = 0;
  let sendWhenUploaded = false; // the form was submitted during an upload

  const room = connect({
    url: config.websocket,
    historyUrl: config.history,
    uploadUrl: config.attachments,
    csrfToken: config.csrf_token,
  });

  function stickToBottom(change) {
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    change();
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  // Never by display name: any guest may bear the same one.
  function isMe(user) {
    return room.user !== null && user.id !== null && user.id === room.user.id;
  }

  // A signed-in user's messages by author id; a guest's by the client_ids
  // this page sent (the first message stored with one: others can copy it).
  function isMine(frame) {
    if (frame.author.id !== null) return isMe(frame.author);
    if (!room.user || room.user.id !== null || !sent.has(frame.client_id)) return false;
    if (sent.get(frame.client_id) === null) sent.set(frame.client_id, frame.id);
    return sent.get(frame.client_id) === frame.id;
  }

  function messageItem(author, body, className) {
    const li = el("li", "liverooms-message" + (className ? " " + className : ""));
    li.append(el("span", "liverooms-author", author), el("span", "liverooms-body", body));
    return li;
  }

  function updateForm() {
    if (!input) return;
    // Writing stays possible offline once allowed: sends are queued until the socket is back.
    input.disabled = !room.canPost || room.state === "closed";
    if (button) button.disabled = input.disabled || uploading > 0;
    if (attach && fileInput) {
      // Signed-in users who may post (docs/permissions.md), where the app's URLs are mounted.
      attach.hidden = !config.attachments || !room.user || room.user.id === null;
      fileInput.disabled = input.disabled || attach.hidden;
      if (config.attachment_types) fileInput.accept = config.attachment_types.join(",");
    }
    if (room.user && !room.canPost) input.placeholder = strings.cannot_post;
    else input.placeholder = room.state === "open" ? strings.placeholder : strings.placeholder_offline;
  }

  room.addEventListener("status", (event) => {
    showStatus(root, strings, event.detail);
    updateForm();
  });
  room.addEventListener("welcome", (event) => {
    const me = part(root, "me");
    if (me) me.textContent = format(strings.you_are, {name: event.detail.user.name});
    updateForm();
    for (const li of byId.values()) updateMenu(li); // what we may do may have changed
  });
  room.addEventListener("reset", () => {
    list.replaceChildren();
    byId.clear();
    menuOpen = null;
    firstHistory = true;
  });

  function storedItem(frame) {
    const li = messageItem(frame.author.name, frame.body, isMine(frame) ? "liverooms-mine" : "");
    li.dataset.seq = frame.seq;
    li.dataset.messageId = frame.id;
    if (frame.author.id !== null) li.dataset.authorId = frame.author.id;
    li.append(timeEl(frame.created));
    // A stored frame rewritten after a deletion or an edit (docs/protocol.md).
    if (frame.redacted) {
      li.classList.add("liverooms-deleted");
      li.querySelector(".liverooms-body").textContent = strings.deleted;
    } else {
      if (frame.attachments && frame.attachments.length) {
        li.querySelector(".liverooms-body").after(attachmentList(frame.attachments));
      }
      if (frame.reply_to) li.querySelector(".liverooms-body").before(quoteEl(frame.reply_to));
      if (frame.edited) li.append(el("span", "liverooms-edited", strings.edited));
      li.append(reactionBar(frame.id, frame.reactions || []));
      addMenu(li, frame.author.name);
    }
    byId.set(frame.id, li);
    return li;
  }

  // Replies: the quoted message as the server last described it (docs/protocol.md, "Replies").
  function quoteEl(quoted) {
    const box = el("blockquote", "liverooms-quote");
    box.dataset.quoteId = quoted.id;
    fillQuote(box, quoted);
    return box;
  }

  function fillQuote(box, quoted) {
    // Classes of their own: the message's .liverooms-author and .liverooms-body stay unique.
    if (quoted.redacted) {
      box.classList.add("liverooms-deleted");
      box.replaceChildren(el("span", "liverooms-quote-body", strings.deleted));
    } else {
      box.replaceChildren(
        el("span", "liverooms-quote-author", quoted.author.name),
        el("span", "liverooms-quote-body", quoted.body),
      );
    }
  }

  function quotesOf(id) {
    return list.querySelectorAll(`.liverooms-quote[data-quote-id="${Number(id)}"]`);
  }

  // Reactions: one button per emoji in use, pressed when it is ours; a click
  // sets or takes back ours. The counts come from message.reactions frames.
  function reactionBar(id, reactions) {
    const bar = el("span", "liverooms-reactions");
    bar.dataset.messageId = id;
    fillReactions(bar, reactions);
    return bar;
  }

  function fillReactions(bar, reactions) {
    const me = room.user && room.user.id !== null ? room.user.id : null;
    bar.replaceChildren(
      ...reactions.map(({emoji, count, users}) => {
        const button = el("button", "liverooms-reaction", `${emoji} ${count}`);
        button.type = "button";
        button.dataset.emoji = emoji;
        button.setAttribute("aria-pressed", String(me !== null && users.includes(me)));
        button.setAttribute("aria-label", format(strings.reaction_label, {emoji, count}));
        button.disabled = me === null || !room.canPost;
        return button;
      }),
    );
  }

  function showPicker(li) {
    const bar = li.querySelector(".liverooms-reactions");
    if (!bar || bar.querySelector(".liverooms-picker")) return;
    const picker = el("span", "liverooms-picker");
    for (const emoji of config.reactions || []) {
      const button = el("button", "liverooms-reaction", emoji);
      button.type = "button";
      button.dataset.emoji = emoji;
      button.dataset.pick = "1";
      picker.append(button);
    }
    bar.append(picker);
    const first = picker.querySelector("button");
    if (first) first.focus();
  }

  list.addEventListener("click", (event) => {
    const button = event.target.closest(".liverooms-reaction");
    if (!button || button.disabled) return;
    const bar = button.closest(".liverooms-reactions");
    const on = button.dataset.pick === "1" || button.getAttribute("aria-pressed") !== "true";
    if (!room.react(Number(bar.dataset.messageId), button.dataset.emoji, on)) {
      showNotice(root, strings.not_connected);
    }
    const picker = bar.querySelector(".liverooms-picker");
    if (picker) picker.remove();
  });
  room.addEventListener("message.reactions", ({detail: frame}) => {
    const li = byId.get(frame.id);
    const bar = li && li.querySelector(".liverooms-reactions");
    if (bar) fillReactions(bar, frame.reactions);
  });

  // Replying: the message answered is shown above the box until sent or cancelled.
  const replying = part(root, "replying");
  let replyTo = null;

  function startReply(li) {
    if (!replying || !input) return;
    replyTo = Number(li.dataset.messageId);
    const cancel = el("button", "liverooms-cancel-reply", "\u00d7");
    cancel.type = "button";
    cancel.setAttribute("aria-label", strings.cancel_reply);
    cancel.addEventListener("click", stopReply);
    const body = li.querySelector(".liverooms-body").textContent;
    const name = li.querySelector(".liverooms-author").textContent;
    replying.replaceChildren(el("span", "", format(strings.replying_to, {name, body: body.slice(0, 80)})), cancel);
    replying.hidden = false;
    input.focus();
  }

  function stopReply() {
    replyTo = null;
    if (replying) replying.hidden = true;
  }

  // Read markers: what this signed-in reader has seen, while the page is in view.
  function markRead() {
    if (document.visibilityState === "visible" && room.lastSeq) room.markRead(room.lastSeq);
  }
  document.addEventListener("visibilitychange", markRead);

  // The message menu: a button on each stored message opening its actions,
  // those the server would allow (docs/client.md, "The message menu").
  const knownMutes = new Map(); // user id -> muted (true) or not (false), from this page's mute/unmute
  const names = new Map(); // user id -> name, for the "muted" notice
  let menuOpen = null; // the <li> whose menu is open

  function actionsFor(li) {
    return [...moderation(li), ...answers(li)];
  }

  // Reply (whoever may post) and react (signed-in users who may post).
  function answers(li) {
    if (!room.user || !li.dataset.messageId || li.classList.contains("liverooms-deleted")) return [];
    if (!room.canPost) return [];
    const react = room.user.id !== null && (config.reactions || []).length ? ["react_to"] : [];
    return [...(replying ? ["reply"] : []), ...react];
  }

  function moderation(li) {
    if (!room.user || !li.dataset.messageId || li.classList.contains("liverooms-deleted")) return [];
    const authorId = li.dataset.authorId ? Number(li.dataset.authorId) : null;
    // Own messages by user id: guests may not change theirs (their author id is null).
    if (authorId !== null && authorId === room.user.id) {
      return room.canPost || room.canModerate ? ["edit", "delete"] : [];
    }
    // Others' messages: signed-in readers may report them to the moderators (a flag).
    const report = room.user.id !== null ? ["report"] : [];
    if (!room.canModerate) return report;
    if (authorId === null) return ["delete", ...report]; // a guest: no user to mute
    const muted = knownMutes.get(authorId); // undefined: not known here, both offered
    const mutes = [...(muted === true ? [] : ["mute"]), ...(muted === false ? [] : ["unmute"])];
    return ["delete", ...mutes, ...report];
  }

  function addMenu(li, name) {
    const box = el("span", "liverooms-actions");
    const toggle = el("button", "liverooms-menu-button", "\u22ef");
    toggle.type = "button";
    toggle.setAttribute("aria-label", format(strings.actions, {name}));
    toggle.setAttribute("aria-haspopup", "menu");
    toggle.setAttribute("aria-expanded", "false");
    toggle.hidden = actionsFor(li).length === 0;
    const menu = el("ul", "liverooms-menu");
    menu.setAttribute("role", "menu");
    menu.hidden = true;
    box.append(toggle, menu);
    li.append(box);
  }

  // After a welcome: who we are and what we may do may have changed.
  function updateMenu(li) {
    const toggle = li.querySelector(".liverooms-menu-button");
    if (!toggle) return;
    if (menuOpen === li) closeMenu(false);
    toggle.hidden = actionsFor(li).length === 0;
  }

  function openMenu(li) {
    closeMenu(false);
    const menu = li.querySelector(".liverooms-menu");
    const items = actionsFor(li).map((action) => {
      const item = el("li");
      item.setAttribute("role", "none");
      const choice = el("button", "liverooms-menu-item", strings[action]);
      choice.type = "button";
      choice.tabIndex = -1;
      choice.dataset.action = action;
      choice.setAttribute("role", "menuitem");
      item.append(choice);
      return item;
    });
    if (!items.length) return;
    menu.replaceChildren(...items);
    menu.hidden = false;
    li.querySelector(".liverooms-menu-button").setAttribute("aria-expanded", "true");
    menuOpen = li;
    menu.querySelector("button").focus();
  }

  function closeMenu(refocus) {
    if (!menuOpen) return;
    const li = menuOpen;
    menuOpen = null;
    li.querySelector(".liverooms-menu").hidden = true;
    const toggle = li.querySelector(".liverooms-menu-button");
    toggle.setAttribute("aria-expanded", "false");
    if (refocus) toggle.focus();
  }

  function act(li, action) {
    closeMenu(!["edit", "reply", "react_to"].includes(action));
    if (action === "edit") return startEdit(li);
    if (action === "reply") return startReply(li);
    if (action === "react_to") return showPicker(li);
    let sent;
    if (action === "delete") {
      if (!confirm(strings.confirm_delete)) return;
      sent = room.deleteMessage(Number(li.dataset.messageId));
    } else if (action === "report") {
      const reason = prompt(strings.report_reason, ""); // optional; null: cancelled
      if (reason === null) return;
      sent = room.flag(Number(li.dataset.messageId), reason);
    } else {
      const authorId = Number(li.dataset.authorId); // mute and unmute: a signed-in author's
      names.set(authorId, li.querySelector(".liverooms-author").textContent);
      sent = action === "mute" ? room.mute(authorId, null) : room.unmute(authorId);
    }
    if (!sent) showNotice(root, strings.not_connected); // these frames are not queued
  }

  // Edit in place: the body becomes a text box; Enter saves, Escape cancels.
  // The shown text changes when the server's message.edited comes back.
  function startEdit(li) {
    const body = li.querySelector(".liverooms-body");
    const editor = el("textarea", "liverooms-edit");
    editor.value = body.textContent;
    editor.rows = Math.min(6, editor.value.split("\n").length);
    editor.setAttribute("aria-label", strings.edit_label);
    if (input && input.maxLength > 0) editor.maxLength = input.maxLength;
    body.hidden = true;
    body.after(editor);
    editor.focus();
    editor.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        stopEdit(li, true);
      } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        const text = editor.value;
        if (text.trim() && text !== body.textContent) {
          if (!room.editMessage(Number(li.dataset.messageId), text)) {
            return showNotice(root, strings.not_connected); // still editing
          }
        }
        stopEdit(li, true);
      }
    });
  }

  function stopEdit(li, refocus) {
    const editor = li.querySelector(".liverooms-edit");
    if (!editor) return;
    editor.remove();
    li.querySelector(".liverooms-body").hidden = false;
    const toggle = li.querySelector(".liverooms-menu-button");
    if (refocus && toggle) toggle.focus();
  }

  list.addEventListener("click", (event) => {
    const li = event.target.closest(".liverooms-message");
    const toggle = event.target.closest(".liverooms-menu-button");
    const choice = event.target.closest(".liverooms-menu-item");
    if (toggle) {
      if (menuOpen === li) closeMenu(true);
      else openMenu(li);
    } else if (choice) {
      act(li, choice.dataset.action);
    }
  });
  // In an open menu: arrows move, Escape closes (Enter and Space click).
  list.addEventListener("keydown", (event) => {
    const menu = event.target.closest(".liverooms-menu");
    if (!menu) return;
    const items = Array.from(menu.querySelectorAll("button"));
    const at = items.indexOf(event.target);
    const moves = {
      ArrowDown: at + 1,
      ArrowRight: at + 1,
      ArrowUp: at - 1,
      ArrowLeft: at - 1,
      Home: 0,
      End: items.length - 1,
    };
    if (event.key in moves) {
      event.preventDefault();
      items[(moves[event.key] + items.length) % items.length].focus();
    } else if (event.key === "Escape") {
      event.preventDefault();
      closeMenu(true);
    } else if (event.key === "Tab") {
      closeMenu(false);
    }
  });
  document.addEventListener("click", (event) => {
    if (menuOpen && !menuOpen.querySelector(".liverooms-actions").contains(event.target)) closeMenu(false);
  });
  room.addEventListener("muted", ({detail: frame}) => {
    knownMutes.set(frame.user_id, true);
    showNotice(root, format(strings.muted, {name: names.get(frame.user_id) || "#" + frame.user_id}));
  });
  room.addEventListener("flagged", () => showNotice(root, strings.flagged));
  room.addEventListener("unmuted", ({detail: frame}) => {
    knownMutes.set(frame.user_id, false);
    showNotice(root, format(strings.unmuted, {name: names.get(frame.user_id) || "#" + frame.user_id}));
  });

  // "Load earlier messages": shown when the first history said older events
  // exist; pages back through the HTTP history API, keeping the reader's place.
  const earlier = part(root, "earlier");
  let firstHistory = true;
  room.addEventListener("frame", ({detail: frame}) => {
    if (frame.type === "history") markRead();
    if (frame.type !== "history" || !firstHistory) return;
    firstHistory = false;
    if (earlier && config.history) earlier.hidden = frame.complete !== false;
  });

  async function loadEarlier() {
    const first = list.querySelector(":scope > li[data-seq]");
    const page = await room.loadOlder({
      before: first ? Number(first.dataset.seq) : room.lastSeq + 1,
      limit: config.page_size,
    });
    const items = page.items.filter((frame) => frame.type === "message" && !byId.has(frame.id));
    const fromBottom = list.scrollHeight - list.scrollTop;
    list.prepend(...items.map(storedItem));
    list.scrollTop = list.scrollHeight - fromBottom; // the same messages stay in view
    return page.complete;
  }
  if (earlier) pageBackOnClick(root, strings, earlier, "load_earlier", loadEarlier);

  room.addEventListener("message", ({detail: frame}) => {
    const pending = frame.client_id && mine.get(frame.client_id);
    const li = storedItem(frame);
    stickToBottom(() => {
      if (pending) pending.remove();
      mine.delete(frame.client_id);
      // Stored messages in seq order, above the ones still being sent.
      list.insertBefore(li, list.querySelector(".liverooms-pending"));
    });
    markRead();
  });
  room.addEventListener("message.edited", ({detail: frame}) => {
    for (const box of quotesOf(frame.id)) {
      const body = frame.body.length > 200 ? frame.body.slice(0, 199) + "\u2026" : frame.body;
      box.querySelector(".liverooms-quote-body").textContent = body; // as the server quotes it
    }
    const li = byId.get(frame.id);
    if (!li) return;
    li.querySelector(".liverooms-body").textContent = frame.body;
    let mark = li.querySelector(".liverooms-edited");
    if (!mark) li.insertBefore((mark = el("span", "liverooms-edited")), li.querySelector(".liverooms-actions"));
    mark.textContent = strings.edited;
  });
  room.addEventListener("message.deleted", ({detail: frame}) => {
    for (const box of quotesOf(frame.id)) fillQuote(box, {id: frame.id, redacted: true});
    if (replyTo === frame.id) stopReply();
    const li = byId.get(frame.id);
    if (!li) return;
    // No menu (or text box) on a deleted message; focus that was in them goes to the list.
    const hadFocus = li.contains(document.activeElement);
    if (menuOpen === li) menuOpen = null;
    stopEdit(li, false);
    const actions = li.querySelector(".liverooms-actions");
    if (actions) actions.remove();
    if (hadFocus) list.focus();
    li.classList.add("liverooms-deleted");
    li.querySelector(".liverooms-body").textContent = strings.deleted;
    // What went with it: its files, its quote, its reactions, the edited mark.
    for (const node of li.querySelectorAll(
      ".liverooms-attachments, .liverooms-quote, .liverooms-reactions, .liverooms-edited",
    )) {
      node.remove();
    }
  });

  room.addEventListener("presence", ({detail: frame}) => {
    const node = part(root, "presence");
    if (!node) return;
    const names = frame.users.map((user) => user.name);
    const more = frame.count - names.length;
    let text = format(strings.online, {count: frame.count}) + " " + names.join(", ");
    if (more > 0) text += " " + format(strings.more, {count: more});
    node.textContent = text;
  });
  room.addEventListener("typing", ({detail: frame}) => {
    if (!typingEl || isMe(frame.user)) return;
    typingEl.textContent = format(strings.typing, {name: frame.user.name});
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => (typingEl.textContent = ""), 3000);
  });
  room.addEventListener("error", ({detail: frame}) => {
    // A send refused as forbidden: the sender was muted (or may no longer post).
    const refusedSend = frame.code === "forbidden" && frame.client_id;
    showError(root, strings, refusedSend ? {...frame, code: "post_forbidden"} : frame);
  });
  room.addEventListener("failed", ({detail}) => {
    // Refused for good: take it off the list and give the text back.
    const li = mine.get(detail.client_id);
    if (li) li.remove();
    mine.delete(detail.client_id);
    if (input && !input.value) input.value = detail.body;
  });

  if (form) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const body = input.value;
      if (uploading) {
        sendWhenUploaded = true; // sent with the files once they are uploaded
        return;
      }
      if (!body.trim() && !ready.length) return;
      const files = ready.splice(0);
      showReady();
      const clientId = room.send(body, undefined, {attachments: files, replyTo});
      stopReply();
      sent.set(clientId, null);
      const shown = body.trim() ? body : files.map((file) => file.name).join(", ");
      const li = messageItem(room.user ? room.user.name : "", shown, "liverooms-mine liverooms-pending");
      li.append(el("span", "liverooms-sending", strings.sending));
      mine.set(clientId, li);
      stickToBottom(() => list.append(li));
      part(root, "error").textContent = "";
      input.value = "";
      input.focus();
    });
    input.addEventListener("keydown", (event) => {
      // Enter sends, Shift+Enter starts a new line.
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    input.addEventListener("input", () => {
      const now = Date.now();
      if (input.value && now - lastTyping > 2000) {
        lastTyping = now;
        room.typing();
      }
    });
  }

  // The uploads waiting for the next message, each with a button to drop it.
  function showReady(uploadingName) {
    if (!readyList) return;
    const items = ready.map((file, index) => {
      const li = el("li", null, file.name + " (" + fileSize(file.size) + ") ");
      const remove = el("button", "liverooms-ready-remove", "\u00d7");
      remove.type = "button";
      remove.setAttribute("aria-label", format(strings.remove_attachment, {name: file.name}));
      remove.addEventListener("click", () => {
        ready.splice(index, 1);
        showReady();
        input.focus();
      });
      li.append(remove);
      return li;
    });
    if (uploadingName) items.push(el("li", "liverooms-uploading", format(strings.uploading, {name: uploadingName})));
    readyList.replaceChildren(...items);
    readyList.hidden = items.length === 0;
    if (input) input.required = ready.length === 0; // a message may be files alone
  }

  if (fileInput) {
    fileInput.addEventListener("change", async () => {
      const files = Array.from(fileInput.files);
      fileInput.value = "";
      part(root, "error").textContent = "";
      const most = config.max_attachments || 4;
      let failed = false;
      for (const file of files) {
        if (ready.length >= most) {
          showNotice(root, format(strings.too_many_attachments, {count: most}));
          break;
        }
        uploading += 1;
        showReady(file.name);
        updateForm();
        try {
          ready.push(await room.upload(file));
        } catch (error) {
          // The server's detail: too large, a type it does not take, not allowed here...
          showError(root, strings, {type: "error", code: "upload", detail: error.message});
          failed = true;
        } finally {
          uploading -= 1;
          showReady();
          updateForm();
        }
      }
      if (sendWhenUploaded && !uploading) {
        sendWhenUploaded = false;
        if (!failed) form.requestSubmit(); // else the text waits: the error says why
      }
      if (input) input.focus();
    });
  }
  return room;
}

const WEB_URL = /^https?:\/\//i;

// An entry's image and embed (embeds.py), built as the server renders them:
// the player's src comes from the server, which builds it from the provider's
// pattern; only http(s) URLs become links.
function entryMedia(frame, strings) {
  const nodes = [];
  if (frame.image && WEB_URL.test(new URL(frame.image, location.href).href)) {
    const figure = el("figure", "liverooms-entry-image");
    const img = el("img");
    img.src = frame.image;
    img.alt = frame.image_alt || "";
    img.loading = "lazy";
    figure.append(img);
    nodes.push(figure);
  }
  if (frame.embed_url && WEB_URL.test(frame.embed_url)) {
    const link = el("a", null, frame.embed_url);
    link.href = frame.embed_url;
    link.rel = "noopener nofollow ugc";
    link.target = "_blank";
    if (frame.embed_src && frame.embed_src.startsWith("https://")) {
      const box = el("div", "liverooms-embed");
      box.dataset.provider = frame.embed_provider;
      const iframe = el("iframe");
      iframe.src = frame.embed_src;
      iframe.title = format(strings.embed_title, {provider: frame.embed_provider});
      iframe.loading = "lazy";
      iframe.allow = "encrypted-media; picture-in-picture; fullscreen";
      iframe.allowFullscreen = true;
      iframe.referrerPolicy = "strict-origin-when-cross-origin";
      iframe.setAttribute("sandbox", "allow-scripts allow-same-origin allow-popups allow-presentation");
      link.className = "liverooms-embed-link";
      box.append(iframe, link);
      nodes.push(box);
    } else {
      const p = el("p", "liverooms-embed liverooms-embed-link");
      p.append(link);
      nodes.push(p);
    }
  }
  return nodes;
}

// Entries of a live blog, pinned ones first, each group newest first (by seq).
function comesBefore(article, other) {
  const pinned = article.hasAttribute("data-pinned");
  const otherPinned = other.hasAttribute("data-pinned");
  if (pinned !== otherPinned) return pinned;
  return Number(other.dataset.seq) < Number(article.dataset.seq);
}

function placeIn(container, node, before) {
  for (const other of container.children) {
    if (other !== node && before(node, other)) return container.insertBefore(node, other);
  }
  if (node.parentNode !== container || node !== container.lastElementChild) container.append(node);
}

// The text of sanitised entry HTML, parsed inertly (a <template> runs nothing).
function textOf(html) {
  const template = document.createElement("template");
  template.innerHTML = html;
  return template.content.textContent.replace(/\s+/g, " ").trim();
}

// As structured.headline(): the title, else the start of the text.
function headline(title, body) {
  const line = title.trim() || textOf(body);
  return line.length <= 110 ? line : line.slice(0, 109).trimEnd() + "\u2026";
}

function mountLiveBlog(root, config) {
  const {strings} = config;
  const container = part(root, "entries");
  const empty = part(root, "empty");
  const summary = part(root, "summary");
  const keys = part(root, "keys");
  const banner = part(root, "banner");
  const byId = new Map(); // entry id -> <article>
  let live = false; // the first history is shown; later entries are "new"
  let unread = 0; // entries that arrived while the reader was away from the top
  let pageTitle = null; // document.title before the unread count went in
  const older = part(root, "older");
  let olderBefore = 0; // "load older entries" goes on before this seq (0: the oldest article's)

  // The entries the server rendered are taken over as they are: the
  // connection resumes after the seq they were read at (config.after), and an
  // entry arriving again (changed meanwhile) replaces its article by id.
  for (const article of container.querySelectorAll(":scope > article[data-entry-id]")) {
    byId.set(Number(article.dataset.entryId), article);
  }

  const blog = connect({
    url: config.websocket,
    historyUrl: config.history,
    streamUrl: config.stream,
    after: config.after || 0,
  });

  function updateEmpty() {
    if (empty) empty.hidden = container.children.length > 0;
  }

  function insert(article, seq, isNew) {
    article.dataset.seq = seq;
    if (isNew) article.classList.add("liverooms-new");
    placeIn(container, article, comesBefore);
  }

  function fill(article, frame) {
    const title = article.querySelector(".liverooms-entry-title");
    title.textContent = frame.title;
    title.hidden = !frame.title;
    // The one place HTML goes in: entry bodies are sanitised by the server (nh3) on save.
    article.querySelector(".liverooms-entry-body").innerHTML = frame.body;
    // Frames carry the media fields when the entry has media or they changed.
    if ("embed_url" in frame || "image" in frame) {
      const media = article.querySelector(".liverooms-entry-media");
      if (media) media.replaceChildren(...entryMedia(frame, strings));
    }
  }

  // The key entries' summary: a link to each, newest first.
  function updateSummary(id, article) {
    if (!keys) return;
    let item = keys.querySelector(`:scope > li[data-entry-id="${id}"]`);
    if (!article || !article.hasAttribute("data-key")) {
      if (item) item.remove();
    } else {
      if (!item) {
        item = el("li");
        item.dataset.entryId = id;
        const link = el("a");
        link.href = "#entry-" + id;
        item.append(link);
      }
      item.dataset.seq = article.dataset.seq;
      const title = article.querySelector(".liverooms-entry-title").textContent;
      const body = article.querySelector(".liverooms-entry-body").innerHTML;
      item.firstChild.textContent = headline(title, body);
      placeIn(keys, item, (a, b) => Number(b.dataset.seq) < Number(a.dataset.seq));
    }
    if (summary) summary.hidden = keys.children.length === 0;
  }

  // Pinned and key marks: attributes, the labels shown, the place in the list.
  function mark(article, pinned, key) {
    article.toggleAttribute("data-pinned", Boolean(pinned));
    article.toggleAttribute("data-key", Boolean(key));
    article.querySelector(".liverooms-pin-label").hidden = !pinned;
    article.querySelector(".liverooms-key-label").hidden = !key;
  }

  function entryArticle(frame) {
    const article = el("article", "liverooms-entry");
    article.id = "entry-" + frame.id;
    article.dataset.entryId = frame.id;
    const marks = el("p", "liverooms-entry-marks");
    marks.append(el("span", "liverooms-pin-label", strings.pinned), " ", el("span", "liverooms-key-label", strings.key));
    const meta = el("p", "liverooms-entry-meta");
    meta.append(timeEl(frame.published, "medium"));
    if (frame.author.name) meta.append(" · ", el("span", "liverooms-author", frame.author.name));
    article.append(
      marks,
      el("h3", "liverooms-entry-title"),
      meta,
      el("div", "liverooms-entry-body"),
      el("div", "liverooms-entry-media"),
    );
    return article;
  }

  // Reactions: a row of the allowed emoji for the blog and for each entry.
  // Counts are what the server sums up and sends (every reader's, ours too).
  const emojis = config.reactions || [];
  const blogReactions = part(root, "reactions");

  function reactionRow(entryId) {
    const row = el("div", "liverooms-reactions");
    for (const emoji of emojis) {
      const button = el("button", "liverooms-reaction");
      button.type = "button";
      button.dataset.emoji = emoji;
      button.setAttribute("aria-label", format(strings.react, {emoji}));
      button.append(emoji, el("span", "liverooms-reaction-count"));
      button.addEventListener("click", () => {
        blog.sendFrame({type: "reaction", emoji, entry: entryId});
      });
      row.append(button);
    }
    return row;
  }

  function addReactionRow(article) {
    if (!emojis.length || article.querySelector(":scope > .liverooms-reactions")) return;
    article.append(reactionRow(Number(article.dataset.entryId)));
  }

  function showReactions(row, emoji, count) {
    const button = row && row.querySelector(`button[data-emoji="${CSS.escape(emoji)}"]`);
    if (!button) return; // an entry not shown here, or an emoji not offered
    const counter = button.querySelector(".liverooms-reaction-count");
    counter.textContent = String((Number(counter.textContent) || 0) + count);
    button.classList.remove("liverooms-reacted");
    void button.offsetWidth; // restart the animation
    button.classList.add("liverooms-reacted");
  }

  if (emojis.length && blogReactions) {
    blogReactions.replaceWith(reactionRow(null));
    for (const article of byId.values()) addReactionRow(article);
  }

  // "N new entries": counted while the top of the entries is out of view
  // (or the page is hidden), shown in a banner and the page title.
  function awayFromTop() {
    return document.visibilityState === "hidden" || container.getBoundingClientRect().top < 0;
  }

  function showUnread() {
    if (unread > 0) {
      if (pageTitle === null) pageTitle = document.title;
      document.title = `(${unread}) ${pageTitle}`;
    } else if (pageTitle !== null) {
      document.title = pageTitle;
      pageTitle = null;
    }
    if (!banner) return;
    banner.hidden = unread === 0;
    banner.textContent = unread === 1 ? strings.new_entry : format(strings.new_entries, {count: unread});
  }

  function arrived() {
    if (!live || !awayFromTop()) return;
    unread += 1;
    showUnread();
  }

  function caughtUp() {
    if (unread === 0 || awayFromTop()) return;
    unread = 0;
    showUnread();
  }

  if (banner) {
    banner.addEventListener("click", () => {
      unread = 0;
      showUnread();
      root.scrollIntoView({block: "start"}); // the widget's top: its header, then the newest entry
    });
  }
  window.addEventListener("scroll", caughtUp, {passive: true});
  document.addEventListener("visibilitychange", caughtUp);

  blog.addEventListener("status", (event) => {
    showStatus(root, strings, event.detail);
    if (event.detail.state === "open") live = true;
  });
  blog.addEventListener("reset", () => {
    container.replaceChildren();
    byId.clear();
    if (keys) keys.replaceChildren();
    if (summary) summary.hidden = true;
    live = false;
    olderBefore = 0;
  });
  function showEntry(frame, isNew) {
    const article = entryArticle(frame);
    fill(article, frame);
    mark(article, frame.pinned, frame.key);
    addReactionRow(article);
    byId.set(frame.id, article);
    insert(article, frame.seq, isNew);
    updateSummary(frame.id, article);
    updateEmpty();
  }

  blog.addEventListener("entry", ({detail: frame}) => {
    const old = byId.get(frame.id); // republished
    if (old) old.remove();
    if (frame.redacted) {
      // unpublished or deleted since (docs/protocol.md)
      byId.delete(frame.id);
      updateSummary(frame.id, null);
      return updateEmpty();
    }
    showEntry(frame, live);
    if (!old) arrived();
  });

  // "Load older entries": pages back through the HTTP history API from the
  // oldest entry shown (pinned ones are shown whatever their age). The
  // stored entry frames carry each entry's current text and marks.

  function oldestShownSeq() {
    let oldest = blog.lastSeq + 1;
    for (const article of byId.values()) {
      const seq = Number(article.dataset.seq);
      if (seq && !article.hasAttribute("data-pinned") && seq < oldest) oldest = seq;
    }
    return oldest;
  }

  async function loadOlder() {
    let before = olderBefore || oldestShownSeq();
    let complete = false;
    // Until a page's worth of entries is shown (other events are skipped),
    // at most ten requests per click.
    let added = 0;
    for (let request = 0; request < 10 && added < config.page_size && !complete; request++) {
      const page = await blog.loadOlder({before, limit: config.page_size});
      complete = page.complete;
      for (const frame of page.items) {
        if (frame.type !== "entry" || frame.redacted || byId.has(frame.id)) continue;
        showEntry(frame, false);
        added += 1;
      }
      if (page.items.length) before = page.items[0].seq;
    }
    olderBefore = before;
    return complete;
  }

  if (older && config.older && config.history) {
    older.hidden = false;
    pageBackOnClick(root, strings, older, "load_older", loadOlder);
  }
  blog.addEventListener("entry.edited", ({detail: frame}) => {
    const article = byId.get(frame.id);
    if (!article) return;
    fill(article, frame);
    let mark = article.querySelector(".liverooms-edited");
    if (!mark) article.querySelector(".liverooms-entry-meta").append((mark = el("span", "liverooms-edited")));
    mark.textContent = " · " + strings.edited;
    updateSummary(frame.id, article);
  });
  blog.addEventListener("entry.marked", ({detail: frame}) => {
    const article = byId.get(frame.id);
    if (!article || frame.redacted) return;
    mark(article, frame.pinned, frame.key);
    placeIn(container, article, comesBefore);
    updateSummary(frame.id, article);
  });
  blog.addEventListener("entry.deleted", ({detail: frame}) => {
    const article = byId.get(frame.id);
    if (article) article.remove();
    byId.delete(frame.id);
    updateSummary(frame.id, null);
    updateEmpty();
  });
  blog.addEventListener("liveblog.status", ({detail: frame}) => {
    const node = part(root, "coverage");
    if (!node) return;
    node.dataset.coverage = frame.status;
    node.replaceChildren(strings["status_" + frame.status] || frame.status);
    if (frame.status === "upcoming" && frame.coverage_start) {
      node.append(" · " + strings.starts + " ", timeEl(frame.coverage_start, "medium"));
    }
  });
  blog.addEventListener("reactions", ({detail: frame}) => {
    for (const {entry, emoji, count} of frame.counts || []) {
      const target = entry === null ? root : byId.get(entry);
      const row = target && target.querySelector(":scope > .liverooms-reactions");
      showReactions(row, emoji, count);
    }
  });
  blog.addEventListener("presence", ({detail: frame}) => {
    const node = part(root, "readers");
    if (node) node.textContent = format(strings.readers, {count: frame.count});
  });
  blog.addEventListener("error", ({detail: frame}) => showError(root, strings, frame));
  return blog;
}

const WIDGETS = {chat: mountChat, liveblog: mountLiveBlog};

/** Start the widget in `root` (an element rendered by a liverooms tag); returns its Connection. */
export function mount(root) {
  if (root.liverooms) return root.liverooms;
  const configNode = root.querySelector(':scope > script[type="application/json"]');
  const widget = WIDGETS[root.dataset.liverooms];
  if (!configNode || !widget) return null; // "no such room" markup, or not ours
  root.liverooms = widget(root, JSON.parse(configNode.textContent));
  return root.liverooms;
}

/** Mount every widget under `scope` (the document by default). */
export function mountAll(scope = document) {
  return Array.from(scope.querySelectorAll("[data-liverooms]"), mount);
}

mountAll();
