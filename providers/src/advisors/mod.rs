//! Advisors: outside services a pool may ask about its decisions. Today one
//! kind, [`chat`], a language model behind an OpenAI-compatible
//! chat-completions endpoint (OpenAI itself, Ollama, vLLM, llama.cpp's
//! server). This folder only speaks the wire format and bounds the call;
//! what to ask, and what an answer is worth, is the host's.

pub mod chat;

pub use chat::{ChatClient, ChatError, ChatReply, ChatRequest, ChatSettings, Usage};
