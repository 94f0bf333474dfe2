// Types for wisp-llm/tutor (hand-written; keep in step with tutor.js). Importing the module
// defines the <wisp-tutor> element.
import type { Backend, EngineApi } from './index.js';

/**
 * `<wisp-tutor model="/models/default.gguf" subject="fractions" greeting="Hi!">`: a tutor chat
 * with the model running in a Web Worker on the reader's machine. Attributes: `model` (GGUF URL,
 * relative to the page; default `./models/default.gguf`), `subject`, `system-prompt`,
 * `greeting`, `backend` (`auto` | `webgpu` | `cpu`), `temperature` (default 0.3; 0 = greedy),
 * `show-alternatives` (off unless present: each word of a reply becomes a button that opens the
 * alternatives the model weighed with their probabilities; a value from 1 to 20 sets how many,
 * default 5; when absent the engine is asked for no log-probabilities). Fires `reply` (detail
 * `{ text }`) after each answer.
 *
 * `mode="quiz"` (default `chat`): a multiple-choice quiz on `subject` instead of a chat,
 * `questions` of them (1 to 10, default 3), four choices each, asked of the model under a JSON
 * Schema ({@link quizSchema}) and shown as text once the reply is checked; the student picks an
 * answer per question (radio buttons in a fieldset each) and "Check answers" marks them and shows
 * the score; "New quiz" writes another, "Stop" ends one being written. A reply that is not a
 * usable quiz (not JSON, another count, an answer index outside the choices, a choice offered
 * twice) is refused, saying why. `temperature` applies (0: the same quiz each time) and
 * `system-prompt` replaces the quiz instruction. Fires `quiz` (detail `{ questions, error }`) when a quiz is ready or failed, and
 * `score` (detail {@link WispTutorScore}) when answers are checked.
 */
export declare class WispTutor extends HTMLElement {
  /** Asks `question` as if typed (mode="chat"); resolves to the reply once it is complete. */
  ask(question: string): Promise<string>;
  /** Writes a new quiz (mode="quiz") and shows it; resolves to its questions, or null when it
   * was stopped or the model's reply was not a usable quiz (the widget says why). */
  newQuiz(): Promise<WispTutorQuestion[] | null>;
  /** Marks the quiz shown and shows the score (as "Check answers"); null without a quiz. */
  checkAnswers(): WispTutorScore | null;
  /** The engine the widget runs on (null until the model loads). Set it to use that engine
   * instead of loading `model` (e.g. one engine shared by several widgets); the widget never
   * disposes an engine it was given. */
  engine: Pick<EngineApi, 'chat'> | null;
  connectedCallback(): void;
  disconnectedCallback(): void;
  attributeChangedCallback(): void;
  static readonly observedAttributes: string[];
}

export type WispTutorBackend = Backend;

export interface WispTutorReplyEvent extends CustomEvent<{ text: string }> {}

/** A quiz question as the model wrote it (checked: four choices, `answer` one of them). */
export interface WispTutorQuestion {
  question: string;
  choices: string[];
  /** The correct choice's index, 0 to 3. */
  answer: number;
}

export interface WispTutorScore {
  score: number;
  total: number;
  /** Each question's chosen index, or null when unanswered. */
  answers: (number | null)[];
}

export interface WispTutorQuizEvent extends CustomEvent<{ questions: WispTutorQuestion[] | null; error: unknown }> {}
export interface WispTutorScoreEvent extends CustomEvent<WispTutorScore> {}

/** The JSON Schema a quiz of `n` questions is asked under (exactly `n` questions, each with a
 * question, exactly four choices and the correct choice's index, strings bounded). */
export declare function quizSchema(n: number): object;

declare global {
  interface HTMLElementTagNameMap {
    'wisp-tutor': WispTutor;
  }
}
