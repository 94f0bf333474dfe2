// Types for wisp-llm (hand-written; keep in step with index.js).

export type Backend = 'auto' | 'webgpu' | 'cpu';
export type ModelSource = string | URL | Blob | ArrayBuffer | ArrayBufferView | ReadableStream<Uint8Array>;

export interface LoadProgress {
  /** 'download' while bytes arrive (on WebGPU each weight goes to the GPU as soon as it is complete),
   * 'build' while the engine is assembled (on WebGPU: its pipelines). */
  phase: 'download' | 'build';
  loaded: number;
  /** Total bytes when known. */
  total: number | null;
  /** Whether the bytes come from the cache. */
  cached?: boolean;
}

export interface LoadOptions {
  backend?: Backend;
  onProgress?: (p: LoadProgress) => void;
  signal?: AbortSignal;
  /** Keep downloaded files in the Cache API, keyed by URL (URLs only). Default true. */
  cache?: boolean;
  /** Context length in tokens; 0 or unset picks the default (min(model's, 4096)). */
  ctx?: number;
  /** The CPU backend's rounding. 'exact' (default): f32 activations against the weights' exact
   * values, what the native CLI and the WebGPU backend compute. 'llamacpp': activations
   * quantized to int8 per 32-block, as llama.cpp's CPU path does: the native CLI's
   * `--numerics llamacpp` tokens (the faster of the two: ~1.5× in Chromium, whose relaxed SIMD
   * makes the int8 dots two instructions a block). Ignored on WebGPU. */
  numerics?: 'exact' | 'llamacpp';
  /** Where the .wasm file is, when bundling moved it. */
  wasmUrl?: string | URL;
  /** Where the relaxed-SIMD build's .wasm file is, when bundling moved it (with `wasmUrl` alone,
   * the plain build is used). */
  relaxedWasmUrl?: string | URL;
  /** Where the threaded build's .wasm file is, when bundling moved it (its glue and
   * `thread.js` must stay beside `index.js` as the package has them). */
  threadsWasmUrl?: string | URL;
  /** The CPU path's threads in the threaded build (cross-origin-isolated pages only; elsewhere
   * the engine runs on one thread whatever this says): a whole number from 1 to 64; default
   * `navigator.hardwareConcurrency`, at most 8. The page's CPU workers are started by the first
   * CPU engine that asks for more than one, shared by the engines loaded while they run, and
   * terminated when the last of those is disposed. */
  threads?: number;
}

export interface WorkerLoadOptions extends LoadOptions {
  /** Where worker.js is, when bundling moved it. */
  workerUrl?: string | URL;
}

export interface GenerateOptions {
  maxTokens?: number;
  /** 0 = greedy. Default 0.8. */
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repetitionPenalty?: number;
  /** Window of the repetition penalty, in tokens. Default 64. */
  repeatLastN?: number;
  frequencyPenalty?: number;
  presencePenalty?: number;
  /** Same seed, same text. */
  seed?: number;
  stop?: string | string[];
  /** Keep generating past end-of-generation tokens (benchmarks). */
  ignoreEos?: boolean;
  /** Each chunk carries its token's log-probability (the model's raw distribution, before the
   * sampler's penalties and truncation; on WebGPU the logits then come back every step). */
  logprobs?: boolean;
  /** With `logprobs`: the most likely alternatives reported per token, 0 to 20. Default 0. */
  topLogprobs?: number;
  /** Only text this GBNF grammar (llama.cpp's format) allows; generation ends when it is complete. */
  grammar?: string;
  /** Only JSON this schema allows (converted to a grammar; an unsupported keyword is refused
   * naming it). */
  jsonSchema?: object | string;
  /** Ends the call with an AbortError; a call still queued behind another rejects at once,
   * without running. */
  signal?: AbortSignal;
}

export interface Chunk {
  /** Never splits a UTF-8 character; may be empty while text is held back. */
  text: string;
  /** The token that produced this chunk, or null for text released at the end. */
  token: number | null;
  /** With `logprobs`: the token's natural-log probability. */
  logprob?: number;
  /** With `logprobs`: the token's bytes (a token may hold part of a UTF-8 character). */
  bytes?: number[];
  /** With `logprobs`: the step's most likely tokens, most likely first. */
  topLogprobs?: TokenAlternative[];
}

export interface TokenAlternative {
  token: number;
  /** The token's bytes decoded (U+FFFD for a partial character). */
  text: string;
  bytes: number[];
  logprob: number;
}

/** OpenAI's `logprobs.content[]` entry. */
export interface ChatLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

export type FinishReason = 'stop' | 'length' | 'abort';

export interface Completion {
  text: string;
  tokens: number[];
  finishReason: FinishReason;
  usage: { promptTokens: number; completionTokens: number; cachedTokens: number };
  timings: { prefillTokensPerSecond: number; decodeTokensPerSecond: number };
}

export interface EngineInfo {
  architecture: string;
  parameters: number;
  quantization: string;
  context: number;
  n_layer: number;
  n_embd: number;
  n_vocab: number;
  backend: 'webgpu' | 'cpu';
  /** The CPU backend's rounding (absent on WebGPU). */
  numerics?: 'exact' | 'llamacpp';
  adapter?: string;
  /** Why 'auto' did not use WebGPU. */
  fallback?: string;
  cached?: boolean;
  /** Why the downloaded file could not be kept in the cache (quota exceeded, storage blocked):
   * the model loaded and runs regardless. */
  cacheError?: string;
  /** The wasm memory's size right after loading (it never shrinks, so this is the load's peak):
   * on WebGPU the weights stream to the GPU and stay out of it. */
  wasmMemoryBytes?: number | null;
  /** Which build of the engine runs: 'simd128+relaxed+threads' in cross-origin-isolated pages
   * (COOP/COEP served, SharedArrayBuffer present) whose browser has relaxed SIMD, the CPU path
   * then running on Web Workers sharing the module's memory; else 'simd128+relaxed' where the
   * browser has relaxed SIMD (the faster int8 dot products); else 'simd128'. All compute the
   * same bits. The first load in a page decides it for the page. */
  wasmBuild?: 'simd128' | 'simd128+relaxed' | 'simd128+relaxed+threads';
  /** Threads the CPU path runs on: the page thread and the workers in the pool (more than 1 only
   * in the threaded build on the CPU backend; 1 on WebGPU). */
  threads?: number;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | string;
  content: string;
}

export interface ChatRequest {
  messages: ChatMessage[];
  stream?: boolean;
  max_tokens?: number;
  max_completion_tokens?: number;
  /** Default 1 (as OpenAI); 0 = greedy. */
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  repetition_penalty?: number;
  frequency_penalty?: number;
  presence_penalty?: number;
  stop?: string | string[];
  seed?: number;
  signal?: AbortSignal;
  /** OpenAI's structured output: `{ type: 'json_object' }` (a JSON object) or
   * `{ type: 'json_schema', json_schema: { schema } }`; `{ type: 'text' }` is the default. */
  response_format?: { type: 'text' } | { type: 'json_object' } | { type: 'json_schema'; json_schema: { name?: string; schema: object; strict?: boolean } };
  /** Return each token's log-probability in `choices[0].logprobs.content` (OpenAI's shape). */
  logprobs?: boolean;
  /** With `logprobs`: alternatives per token, 0 to 20. */
  top_logprobs?: number;
  /** What to do when the conversation does not fit the context: 'error' (default) or drop the oldest turns (system messages are kept). */
  context_overflow?: 'error' | 'drop-oldest';
}

export interface ChatUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** Prompt tokens reused from the KV cache (a conversation that extends the previous one). */
  prompt_tokens_details: { cached_tokens: number };
  timings: Completion['timings'];
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: { index: 0; message: { role: 'assistant'; content: string }; logprobs?: { content: ChatLogprob[] } | null; finish_reason: FinishReason }[];
  usage: ChatUsage;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: { index: 0; delta: { role?: 'assistant'; content?: string }; logprobs?: { content: ChatLogprob[] }; finish_reason: FinishReason | null }[];
  /** On the last chunk only. */
  usage?: ChatUsage;
}

export interface Chat {
  completions: {
    create(req: ChatRequest & { stream: true }): Promise<AsyncIterable<ChatCompletionChunk>>;
    create(req: ChatRequest & { stream?: false }): Promise<ChatCompletion>;
  };
}

export interface EngineApi {
  readonly info: EngineInfo;
  readonly chat: Chat;
  generate(prompt: string | number[], opts?: GenerateOptions): AsyncIterable<Chunk>;
  complete(prompt: string | number[], opts?: GenerateOptions): Promise<Completion>;
  tokenize(text: string): Promise<number[]>;
  detokenize(ids: ArrayLike<number>, opts?: { special?: boolean }): Promise<string>;
  perplexity(text: string, opts?: { ctx?: number; half?: boolean }): Promise<{ ppl: number; tokensScored: number }>;
  /** The model on an evaluation set, as `wisp eval` runs it: each item answered greedily (through
   * the chat template where the model has one; a model without one continues a plain prompt and
   * refuses `messages`), the reference's perplexity given the prompt, and the report
   * `wisp eval --json` prints. A bad item rejects naming it (`item N`, from 1) before anything
   * runs; an abort rejects with an AbortError and the engine stays usable. */
  evaluate(items: EvalItem[], opts?: EvaluateOptions): Promise<EvalReport>;
  /** Forgets the conversation in the KV cache. */
  reset(): Promise<void>;
  /** Live numbers for watching long use (GPU objects are all created at load, so they stay flat). */
  stats(): Promise<EngineStats>;
  /** Frees the model; every later call rejects with "the engine was disposed". */
  dispose(): Promise<void>;
}

/** One item of an evaluation set (a line of `wisp eval --data`'s JSONL); other keys are ignored. */
export type EvalItem = ({ prompt: string; messages?: never } | { messages: ChatMessage[]; prompt?: never }) & {
  /** The answer the output is scored against (not empty). */
  reference: string;
  /** Any JSON value, carried into the report. */
  id?: unknown;
};

export interface EvaluateOptions {
  /** Most tokens per answer. Default 128. */
  maxTokens?: number;
  /** After each item: `done` of `total`, and the item's entry of the report. */
  onProgress?: (p: { done: number; total: number; item: EvalItemScores }) => void;
  signal?: AbortSignal;
}

/** An item's outcome and scores (keys as `wisp eval --json` writes them). */
export interface EvalItemScores {
  id?: unknown;
  /** The item's index in the list, from 1. */
  line: number;
  output: string;
  reference: string;
  prompt_tokens: number;
  generated_tokens: number;
  /** Why the answer ended: an end-of-generation token, or the maxTokens (or context) limit. */
  finish: 'eog' | 'stop' | 'length';
  reference_tokens: number;
  /** Σ −ln p(reference token | prompt, the reference tokens before it). */
  reference_nll: number;
  /** Sentence BLEU (0–100), sacreBLEU's `sentence_bleu`. */
  bleu: number;
  /** ROUGE F1 (0–1), rouge-score without a stemmer. */
  rouge1: number;
  rouge2: number;
  rougeL: number;
  /** exp(reference_nll / reference_tokens). */
  perplexity: number;
}

/** `wisp eval --json`'s report (without `data`), with the CLI's table. */
export interface EvalReport {
  items: EvalItemScores[];
  corpus: {
    items: number;
    /** Corpus BLEU, sacreBLEU's defaults. */
    bleu: { score: number; counts: number[]; totals: number[]; precisions: number[]; bp: number; sys_len: number; ref_len: number };
    bleu_signature: string;
    /** Means of the items' ROUGE F1. */
    rouge1: number;
    rouge2: number;
    rougeL: number;
    /** exp(Σ reference_nll / Σ reference_tokens). */
    perplexity: number;
    reference_tokens: number;
  };
  max_tokens: number;
  /** Whether the items went through the model's chat template. */
  chat_template: boolean;
  /** The report as `wisp eval` prints it without --json. */
  table: string;
}

export interface EngineStats {
  /** Size of the wasm memory of the realm running the engine (it only grows). */
  wasmMemoryBytes: number | null;
  gpuBuffers: number;
  gpuBindGroups: number;
  cachedTokens: number;
}

/** The engine in this thread; its instance members are those of EngineApi (declaration merging). */
export interface Engine extends EngineApi {}
export declare class Engine {
  static load(source: ModelSource, opts?: LoadOptions): Promise<Engine>;
  /** URLs of cached model files. */
  static cached(): Promise<string[]>;
  /** Removes a cached model file; true if it was cached. */
  static evict(url: string | URL): Promise<boolean>;
}

/** The same API with the engine in a Web Worker. */
export declare function createWorkerEngine(source: ModelSource, opts?: WorkerLoadOptions): Promise<EngineApi>;
