import { Template } from '@huggingface/jinja';
import { Df11Error } from '../errors.ts';
import type { TextTokenizer } from './tokenizer.ts';
import type { ChatMessage } from './types.ts';

/** The model's own chat template (tokenizer_config.json `chat_template`, a Jinja program). */
export class ChatTemplate {
  private readonly template: Template;

  constructor(
    source: string,
    private readonly specials: { bos_token?: string; eos_token?: string },
  ) {
    try {
      this.template = new Template(source);
    } catch (cause) {
      throw new Df11Error('config', `chat_template does not parse: ${String(cause)}`, { cause });
    }
  }

  /** The template named "default" when tokenizer_config.json holds several; null when there is none. */
  static fromTokenizer(tokenizer: TextTokenizer): ChatTemplate | null {
    const raw = tokenizer.config.chat_template;
    const source = Array.isArray(raw) ? (raw.find((t) => t.name === 'default') ?? raw[0])?.template : raw;
    if (typeof source !== 'string') return null;
    return new ChatTemplate(source, {
      bos_token: tokenizer.specialToken('bos_token'),
      eos_token: tokenizer.specialToken('eos_token'),
    });
  }

  /** The prompt text for `messages`, ending with the assistant turn's opening when asked. */
  render(messages: readonly ChatMessage[], addGenerationPrompt = true): string {
    try {
      return this.template.render({
        messages,
        add_generation_prompt: addGenerationPrompt,
        bos_token: this.specials.bos_token ?? '',
        eos_token: this.specials.eos_token ?? '',
      });
    } catch (cause) {
      throw new Df11Error('bad-request', `chat_template failed on these messages: ${String(cause)}`, { cause });
    }
  }
}
