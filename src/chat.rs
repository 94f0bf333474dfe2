//! Chat templates: the model's own `tokenizer.chat_template` (Jinja) rendered with `minijinja`
//! (Python string methods through `minijinja-contrib`'s pycompat), multi-turn, with a system prompt
//! and `add_generation_prompt`. A model without a template gets ChatML, explicitly; a template we
//! cannot render is an error that says why, never a silent fallback.

use crate::error::{Error, Result};
use minijinja::{context, Environment, ErrorKind};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Message {
        Message { role: role.into(), content: content.into() }
    }
}

/// ChatML, used only for models that ship no template.
pub const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Whether a model with tokenizer `tok` can hold a conversation: it has its own chat template,
/// or it has none but its vocabulary has ChatML's markers as tokens, so the ChatML fallback speaks
/// its language. A model with neither (a base model such as Gemma 3 270M, whose file has no
/// `tokenizer.chat_template`) is refused: ChatML's markers would reach it as plain text, and
/// whatever it answered would not be a chat reply.
pub fn check_chat_support(tok: &crate::tokenizer::Tokenizer) -> Result<()> {
    if tok.chat_template.is_some() {
        return Ok(());
    }
    let is_token =
        |s: &str| tok.encode(s, false).is_ok_and(|ids| ids.len() == 1 && tok.decode(&ids, true) == s);
    if is_token("<|im_start|>") && is_token("<|im_end|>") {
        return Ok(());
    }
    Err(Error::Template(
        "the model has no chat template (its file has no tokenizer.chat_template, and its \
         vocabulary has no ChatML tokens to fall back on): it is not made for chat, as a base \
         model is not"
            .into(),
    ))
}

/// Templates larger than this are refused (real ones are a few KiB).
const MAX_TEMPLATE_BYTES: usize = 1 << 20;

pub struct ChatTemplate {
    env: Environment<'static>,
    pub source: String,
    pub bos: String,
    pub eos: String,
}

impl ChatTemplate {
    /// `template` is the model's; `None` selects ChatML.
    pub fn new(template: Option<&str>, bos: &str, eos: &str) -> Result<ChatTemplate> {
        let source = template.unwrap_or(CHATML).to_string();
        if source.len() > MAX_TEMPLATE_BYTES {
            return Err(Error::limit("chat template bytes", source.len() as u64, MAX_TEMPLATE_BYTES as u64));
        }
        let mut env = Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.set_fuel(Some(1_000_000));
        env.add_function("raise_exception", |msg: String| -> std::result::Result<String, minijinja::Error> {
            Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_function("strftime_now", |_fmt: String| -> String { String::new() });
        env.add_template_owned("chat", source.clone())
            .map_err(|e| Error::Template(format!("cannot parse the model's chat template: {e}")))?;
        Ok(ChatTemplate { env, source, bos: bos.into(), eos: eos.into() })
    }

    /// Renders `messages`; with `add_generation_prompt` the text ends where the assistant speaks.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        for m in messages {
            if m.role.is_empty() {
                return Err(Error::arg("messages", "a message has an empty role"));
            }
        }
        let tmpl = self.env.get_template("chat").map_err(|e| Error::Template(e.to_string()))?;
        tmpl.render(context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos,
            eos_token => self.eos,
        })
        .map_err(|e| Error::Template(format!("cannot render the chat template: {e}")))
    }
}
