// Types for wisp-llm/render (hand-written; keep in step with render.js).
import type { ChatRequest, ChatUsage, EngineApi, FinishReason, ChatCompletionChunk, ChatLogprob } from './index.js';

/** Appends `text` to `parent` as safe markdown: text nodes and a small subset (paragraphs, line
 * breaks, **bold**, *italic*, `code`, fenced blocks), never HTML. Returns `parent`. With
 * `logprobs` (the text's `choices[0].logprobs.content` entries), each token's visible text is
 * wrapped in `<span class="wisp-token" data-token="i" data-confidence="high|medium|low">`
 * (tokens made only of markup or line breaks get an empty `wisp-mark` span whose `data-glyph`
 * CSS can show). */
export declare function renderMarkdown<T extends Node & ParentNode>(parent: T, text: string, opts?: { logprobs?: ChatLogprob[] | null }): T;

/** A token as the list of alternatives shows it: " Paris" → "␣Paris", "\n" → "↵", part of a
 * UTF-8 character as its bytes ("‹e2 80›"). */
export declare function visibleToken(text: string, bytes?: number[]): string;

/** A natural-log probability as a percentage: "92.4%", "<0.1%", ">99.9%". */
export declare function formatProbability(logprob: number): string;

export interface TokenInspectorOptions {
  /** Render replies with their tokens inspectable (false: plain markdown). Default true. */
  enabled?: boolean;
  /** Alternatives streamChat asks for per token (1 to 20). Default 5. */
  topLogprobs?: number;
}

/**
 * Makes the replies rendered into `container` inspectable: each token a button (one tab stop
 * per reply; ←/→, Home/End move) that opens, on click, Enter or Space, a list of the
 * alternatives the model weighed with their probabilities (a polite live region positioned in
 * `container`, which should be `position: relative`); Escape, a click elsewhere or leaving the
 * container closes it. Style it with the classes `wisp-token`, `wisp-mark`, `wisp-alternatives`,
 * `wisp-alt`, `wisp-alt-token`, `wisp-alt-bar`, `wisp-alt-p`, `wisp-alt-note` (see www/app.css).
 */
export declare class TokenInspector {
  constructor(container: Element, opts?: TokenInspectorOptions);
  /** Setting it re-renders every reply rendered so far (plain markdown when false). */
  enabled: boolean;
  topLogprobs: number;
  /** Renders `text` into `element` (replacing its children) with `logprobs` inspectable. */
  render<T extends Element>(element: T, text: string, logprobs: ChatLogprob[] | null): T;
  /** Stops tracking `element`. */
  forget(element: Element): void;
  /** Closes the list of alternatives. */
  close(): void;
  /** Closes and removes the list, and forgets the replies. */
  dispose(): void;
}

export interface StreamChatOptions {
  /** Called after each chunk is rendered, with the reply so far. */
  onChunk?: (chunk: ChatCompletionChunk, text: string) => void;
  /** Shown while the reply is empty. Default '…'. */
  placeholder?: string;
  /** Asks for log-probabilities (`logprobs: true`, `top_logprobs`: the inspector's, unless the
   * request sets them) and renders each token inspectable as it arrives. Without it nothing
   * extra is asked for. */
  inspector?: TokenInspector | null;
}

export interface StreamChatResult {
  /** The reply as far as it streamed. */
  text: string;
  /** The reply's log-probability entries (with an inspector), else null. */
  logprobs: ChatLogprob[] | null;
  /** From the last chunk; null when the stream ended early. */
  finishReason: FinishReason | null;
  usage: ChatUsage | null;
  /** What ended the stream early (an AbortError keeps the partial reply on screen; anything
   * else replaces it with "(error: …)"), or null. */
  error: unknown;
}

/** Streams `engine.chat.completions.create({ ...request, stream: true })` into `element`,
 * re-rendering the reply with renderMarkdown after each chunk. Never rejects. */
export declare function streamChat(
  engine: Pick<EngineApi, 'chat'>,
  request: Omit<ChatRequest, 'stream'>,
  element: Element,
  opts?: StreamChatOptions,
): Promise<StreamChatResult>;

/**
 * Lays a multiple-choice quiz out under `parent` as text only (a fieldset and legend per
 * question, labelled radio buttons named `name`-index); what `<wisp-tutor mode="quiz">` shows.
 */
export declare function renderQuiz<T extends Node & ParentNode>(
  parent: T,
  questions: { question: string; choices: string[] }[],
  opts?: { name?: string },
): T;
