// Typings of widgets.js, the drop-in widgets of the liverooms template tags.
import type { Connection } from "./liverooms.js";

/** Start the widget rendered by a liverooms tag in `root`; null for markup without one. */
export declare function mount(root: HTMLElement): Connection | null;
/** Mount every [data-liverooms] element under `scope` (default: the document). */
export declare function mountAll(scope?: ParentNode): Array<Connection | null>;

declare global {
  interface HTMLElement {
    /** The widget's connection, once mounted. */
    liverooms?: Connection;
  }
}
