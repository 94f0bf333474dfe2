// Types for wisp-llm/tutor (hand-written; keep in step with tutor.js). Importing the module
// defines the <wisp-tutor> element.
import type { Backend } from './index.js';

/**
 * `<wisp-tutor model="/models/default.gguf" subject="fractions" greeting="Hi!">`: a tutor chat
 * with the model running in a Web Worker on the reader's machine. Attributes: `model` (GGUF URL,
 * relative to the page; default `./models/default.gguf`), `subject`, `system-prompt`,
 * `greeting`, `backend` (`auto` | `webgpu` | `cpu`), `temperature` (default 0.3; 0 = greedy),
 * `show-alternatives` (off unless present: each word of a reply becomes a button that opens the
 * alternatives the model weighed with their probabilities; a value from 1 to 20 sets how many,
 * default 5; when absent the engine is asked for no log-probabilities). Fires `reply` (detail
 * `{ text }`) after each answer.
 */
export declare class WispTutor extends HTMLElement {
  /** Asks `question` as if typed; resolves to the reply once it is complete. */
  ask(question: string): Promise<string>;
  connectedCallback(): void;
  disconnectedCallback(): void;
  attributeChangedCallback(): void;
  static readonly observedAttributes: string[];
}

export type WispTutorBackend = Backend;

export interface WispTutorReplyEvent extends CustomEvent<{ text: string }> {}

declare global {
  interface HTMLElementTagNameMap {
    'wisp-tutor': WispTutor;
  }
}
