// Types for wisp-llm/render (hand-written; keep in step with render.js).
import type { ChatRequest, ChatUsage, EngineApi, FinishReason, ChatCompletionChunk } from './index.js';

/** Appends `text` to `parent` as safe markdown: text nodes and a small subset (paragraphs, line
 * breaks, **bold**, *italic*, `code`, fenced blocks), never HTML. Returns `parent`. */
export declare function renderMarkdown<T extends Node & ParentNode>(parent: T, text: string): T;

export interface StreamChatOptions {
  /** Called after each chunk is rendered, with the reply so far. */
  onChunk?: (chunk: ChatCompletionChunk, text: string) => void;
  /** Shown while the reply is empty. Default '…'. */
  placeholder?: string;
}

export interface StreamChatResult {
  /** The reply as far as it streamed. */
  text: string;
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
