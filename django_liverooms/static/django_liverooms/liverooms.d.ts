// Typings of liverooms.js, the django-liverooms browser client (docs/client.md).

export interface User {
  id: number | null;
  name: string;
}

export interface Welcome {
  type: "welcome";
  stream: "chat" | "liveblog";
  slug: string;
  seq: number;
  user: User;
  can_post: boolean;
  can_moderate: boolean;
  version: number;
}

export interface MessageFrame {
  type: "message";
  seq: number;
  id: number;
  slug: string;
  body: string;
  author: User;
  created: string;
  client_id: string | null;
  /** Stored frames only: the message was deleted since (body is ""). */
  redacted?: true;
  /** Stored frames only: the message was edited since; body is the current text. */
  edited?: string;
  /** Stored frames only: its reactions as of the latest "message.reactions". */
  reactions?: MessageReaction[];
}
export interface MessageEdited { type: "message.edited"; seq: number; id: number; body: string; edited: string }
export interface MessageDeleted { type: "message.deleted"; seq: number; id: number }
export interface MessageReaction { emoji: string; count: number; users: number[] }
/** A message's reactions now (chat; coalesced, stored, replayed). */
export interface MessageReactions { type: "message.reactions"; seq: number; id: number; reactions: MessageReaction[] }

export interface EntryFrame {
  type: "entry";
  seq: number;
  id: number;
  slug: string;
  title: string;
  /** HTML, sanitised by the server. */
  body: string;
  author: User;
  published: string;
  /** Stored frames only: unpublished or deleted since (title and body are ""). */
  redacted?: true;
  /** Stored frames only: edited since; title and body are the current text. */
  edited?: string;
  /** Addition (issue 14), present only when true: pinned (shown first), a key entry. */
  pinned?: true;
  key?: true;
}
/** Addition (issue 14): an entry's embed and image, present when it has them (or they changed). */
export interface EntryMedia {
  /** The URL the editor gave (http or https). */
  embed_url?: string;
  /** "youtube", "vimeo", "x", "instagram", a configured provider, or "" for a plain link. */
  embed_provider?: string;
  /** The player's https URL, built by the server; "" for a plain link. */
  embed_src?: string;
  image?: string;
  image_alt?: string;
}
export interface EntryFrame extends EntryMedia {}
export interface EntryEdited extends EntryMedia { type: "entry.edited"; seq: number; id: number; title: string; body: string; edited: string }
export interface EntryDeleted { type: "entry.deleted"; seq: number; id: number }

/** Addition (issue 14): a live blog's coverage changed; a stream event. */
export interface LiveBlogStatus {
  type: "liveblog.status";
  seq: number;
  status: "upcoming" | "live" | "ended";
  coverage_start: string | null;
  coverage_end: string | null;
}

/** Addition (issue 14): a live entry was pinned or unpinned, marked key or not. */
export interface EntryMarked { type: "entry.marked"; seq: number; id: number; pinned: boolean; key: boolean; redacted?: true }

/** Addition (issue 14): reader reactions summed since the last such frame (no seq). */
export interface Reactions { type: "reactions"; counts: Array<{ entry: number | null; emoji: string; count: number }> }

export interface Presence { type: "presence"; count: number; users: User[] }
export interface Typing { type: "typing"; user: User }
export interface ErrorFrame { type: "error"; code: string; detail: string; client_id: string | null }
export interface Muted { type: "muted"; user_id: number; until: string | null }
export interface Unmuted { type: "unmuted"; user_id: number }
/** Addition (issue 16): your flag of message `id` is stored (to you alone, no seq). */
export interface Flagged { type: "flagged"; id: number }

/** Any frame, including types a host project adds with bridge.register(). */
export interface Frame {
  type: string;
  seq?: number;
  [field: string]: unknown;
}

/** A page of older events (Connection.loadOlder), oldest first. */
export interface OlderPage {
  items: Frame[];
  /** Nothing older is kept. */
  complete: boolean;
}

export type State = "connecting" | "open" | "offline" | "closed";

export interface Status {
  state: State;
  transport: "websocket" | "sse";
  /** The close code that led here (4403/4404 when closed for good). */
  code: number | null;
  /** Milliseconds until the next attempt, when offline. */
  retryIn: number | null;
}

export interface Ack { client_id: string; frame: MessageFrame }
export interface Failed { client_id: string; body: string; code: string; detail: string }

export interface ConnectOptions {
  /** WebSocket path ("/ws/chat/lobby/") or a full ws:/wss: URL. */
  url?: string;
  /** HTTP history API of the stream ("/live/chat/lobby/messages"). */
  historyUrl?: string | null;
  /** A live blog's SSE stream ("/live/liveblog/match-day/stream"), used when WebSockets fail. */
  streamUrl?: string | null;
  /** Resume after this seq. */
  after?: number;
  backoffBase?: number;
  backoffCap?: number;
  abuseDelay?: number;
  pingInterval?: number;
  pongTimeout?: number;
  connectTimeout?: number;
  gapTimeout?: number;
  ackTimeout?: number;
  historyPageSize?: number;
  fallbackAfter?: number;
}

export interface ConnectionEventMap {
  frame: CustomEvent<Frame>;
  status: CustomEvent<Status>;
  reset: CustomEvent<ErrorFrame>;
  ack: CustomEvent<Ack>;
  failed: CustomEvent<Failed>;
  welcome: CustomEvent<Welcome>;
  message: CustomEvent<MessageFrame>;
  "message.edited": CustomEvent<MessageEdited>;
  "message.deleted": CustomEvent<MessageDeleted>;
  "message.reactions": CustomEvent<MessageReactions>;
  entry: CustomEvent<EntryFrame>;
  "entry.edited": CustomEvent<EntryEdited>;
  "entry.deleted": CustomEvent<EntryDeleted>;
  "liveblog.status": CustomEvent<LiveBlogStatus>;
  "entry.marked": CustomEvent<EntryMarked>;
  reactions: CustomEvent<Reactions>;
  presence: CustomEvent<Presence>;
  typing: CustomEvent<Typing>;
  error: CustomEvent<ErrorFrame>;
  muted: CustomEvent<Muted>;
  unmuted: CustomEvent<Unmuted>;
  flagged: CustomEvent<Flagged>;
}

export declare const CLOSE_FORBIDDEN: 4403;
export declare const CLOSE_NOT_FOUND: 4404;
export declare const CLOSE_ABUSE: 4429;
export declare const CLOSE_UNAVAILABLE: 4503;

export declare class Connection extends EventTarget {
  constructor(options: ConnectOptions);
  readonly options: Required<ConnectOptions>;
  /** The greatest seq delivered. */
  readonly lastSeq: number;
  /** The smallest seq delivered or loaded by loadOlder() (0: none yet). */
  readonly oldestSeq: number;
  readonly user: User | null;
  readonly canPost: boolean;
  readonly canModerate: boolean;
  readonly state: State;
  readonly transport: "websocket" | "sse";
  /** Sends not yet acknowledged, by client_id. */
  readonly pending: Map<string, { body: string; sentAt: number }>;
  /** Send a chat message (queued while offline); returns its client_id. */
  send(body: string, clientId?: string): string;
  /** Say you are typing (chat only). */
  typing(): boolean;
  /** Send any frame now; false when not connected. */
  sendFrame(frame: Frame): boolean;
  /** message.edit: edit your message, or anyone's as a moderator (chat only).
   * Sent now or not at all (false when not connected); answered by a
   * "message.edited" event or an "error" (client_id null). */
  editMessage(id: number, body: string): boolean;
  /** message.delete: delete your message, or anyone's as a moderator (chat only);
   * answered by a "message.deleted" event or an "error". */
  deleteMessage(id: number): boolean;
  /** mute (moderators, chat only): the user may read but not post here, for
   * `minutes` (1 to MAX_MUTE_MINUTES) or, null (the default), until unmuted;
   * answered by a "muted" frame or an "error". */
  mute(userId: number, minutes?: number | null): boolean;
  /** unmute (moderators, chat only); answered by an "unmuted" frame or an "error". */
  unmute(userId: number): boolean;
  /** flag (signed-in readers, chat only): report message `id` to the site's
   * moderators with an optional `reason` (at most 500 characters); answered
   * by a "flagged" frame (also when reported before) or an "error". Sent now
   * or not at all (false when not connected). */
  flag(id: number, reason?: string): boolean;
  /** message.react (signed-in posters, chat only): set (or, `on` false, take back)
   * your `emoji` on message `id`; readers get a coalesced "message.reactions"
   * event, or you an "error". Sent now or not at all. */
  react(id: number, emoji: string, on?: boolean): boolean;
  /** Chat search over HTTP (needs a chat historyUrl): messages matching `q`,
   * newest first, older than message id `before`; rejects with an Error
   * carrying `code`, `detail` and `status`. */
  search(q: string, options?: { before?: number | null; limit?: number }): Promise<{ items: MessageFrame[]; complete: boolean }>;
  /** Scroll-back over the HTTP history API (needs historyUrl): the `limit`
   * events before `before` (default: oldestSeq), returned, not emitted. */
  loadOlder(options?: { before?: number; limit?: number }): Promise<OlderPage>;
  /** Close for good. */
  close(): void;
  addEventListener<K extends keyof ConnectionEventMap>(
    type: K,
    listener: (event: ConnectionEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof ConnectionEventMap>(
    type: K,
    listener: (event: ConnectionEventMap[K]) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
}

export declare function connect(options: ConnectOptions): Connection;
export declare function newClientId(): string;
export declare function socketUrl(url: string, after?: number): string;
export declare function backoffDelay(attempt: number, base: number, cap: number): number;

// Read state (issue 16, additions; docs/protocol.md "Read state"), merged
// into the declarations above.

export interface Welcome {
  /** Chat rooms, signed-in users: the seq read up to (0: nothing yet). */
  read_seq?: number;
}
export interface MessageFrame {
  /** The usernames the body @names (at most 10), present only when it names some. */
  mentions?: string[];
}
export interface MessageEdited {
  mentions?: string[];
}
/** The read marker as stored, after a "read" frame (not a stream event: no seq). */
export interface ReadFrame { type: "read"; read_seq: number }
export interface ConnectOptions {
  /** markRead(): at most one "read" frame per this many ms (1000). */
  readInterval?: number;
}
export interface ConnectionEventMap {
  read: CustomEvent<ReadFrame>;
}
export interface Connection {
  /** The read marker: welcome.read_seq, then each "read" frame (0: none). */
  readonly readSeq: number;
  /** Mark the room read up to `seq` (default: lastSeq); chat rooms, signed-in
   * users (false for a guest). Coalesced to one frame per readInterval,
   * held while offline. */
  markRead(seq?: number): boolean;
}

// Attachments (issue 16, additions; docs/protocol.md "Attachments"), merged
// into the declarations above.

/** An uploaded file: upload()'s answer, and an item of MessageFrame.attachments. */
export interface Attachment {
  id: number;
  /** The file's name as uploaded, cleaned (text: render it with textContent). */
  name: string;
  /** As the server found it in the file's bytes: "image/png", "application/pdf", "text/plain"... */
  type: string;
  /** In bytes. */
  size: number;
  /** Where it is served, to readers of the room ("" if the app's URLs are not mounted). */
  url: string;
}
export interface MessageFrame {
  /** Present only when the message has attachments; never on a redacted frame. */
  attachments?: Attachment[];
}
/** upload()'s rejection: the server's error code and detail, and the HTTP status. */
export interface UploadError extends Error {
  /** "too_large", "unsupported_type", "forbidden", "rate_limited", "not_found", "http_<status>", "network"... */
  code: string;
  status: number;
}
export interface SendOptions {
  /** Ids of files you uploaded to this room (or upload()'s answers), at most 4. */
  attachments?: Array<number | Attachment>;
  /** The id of the message of this room it answers (its frame then quotes it). */
  replyTo?: number | null;
}
/** What a reply's frame shows of the message it answers. */
export type Quote = { id: number; author: User; body: string } | { id: number; redacted: true };
export interface MessageFrame {
  reply_to?: Quote;
}
export interface Failed {
  attachments?: number[];
}
export interface ConnectOptions {
  /** A chat room's attachments endpoint ("/live/chat/lobby/attachments"); default:
   * historyUrl with "attachments" for its last "messages". */
  uploadUrl?: string | null;
  /** Django's CSRF token for upload(); default: the csrftoken cookie's value. */
  csrfToken?: string | null;
}
export interface Connection {
  /** Send a chat message with attachments; the body may then be empty. */
  send(body: string, clientId?: string, options?: SendOptions): string;
  /** Upload a file to this chat room; resolves to the attachment to send,
   * rejects with an UploadError. */
  upload(file: Blob & { name?: string }): Promise<Attachment>;
}
export declare function csrfCookie(name?: string): string;
