// Types for wisp-llm/tutor (hand-written; keep in step with tutor.js). Importing the module
// defines the <wisp-tutor> element.
import type { Backend } from './index.js';

/**
 * `<wisp-tutor model="/models/default.gguf" subject="fractions" greeting="Hi!">`: a tutor chat
 * with the model running in a Web Worker on the reader's machine. Attributes: `model` (GGUF URL,
 * relative to the page; default `./models/default.gguf`), `subject`, `system-prompt`,
 * `greeting`, `backend` (`auto` | `webgpu` | `cpu`). Fires `reply` (detail `{ text }`) after
 * each answer.
 */
export declare class WispTutor extends HTMLElement {
  /** Asks `question` as if typed; resolves to the reply once it is complete. */
  ask(question: string): Promise<string>;
  connectedCallback(): void;
  disconnectedCallback(): void;
}

export type WispTutorBackend = Backend;

export interface WispTutorReplyEvent extends CustomEvent<{ text: string }> {}

declare global {
  interface HTMLElementTagNameMap {
    'wisp-tutor': WispTutor;
  }
}
