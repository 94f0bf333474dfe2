// <wisp-tutor> for the one-script embed (`<script type="module" src="https://your.site/wisp/tutor.js">`):
// the widget itself ships in the package (pkg/tutor.js, `wisp-llm/tutor`); importing it defines
// the element.
export { WispTutor } from './pkg/tutor.js';
