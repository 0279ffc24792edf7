import { Template } from '@huggingface/jinja';
import { Df11Error } from '../errors.ts';
import { readJson, readText, type ModelFiles } from '../format/byte-source.ts';
import type { TextTokenizer } from './tokenizer.ts';
import type { ChatMessage } from './types.ts';

/** The model's own chat template (a Jinja program; see `fromFiles` for where it is found). */
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

  /**
   * The model's template, where transformers looks for it: `chat_template.jinja` beside the tokenizer files,
   * else `chat_template.json` (`{ "chat_template": … }`), else tokenizer_config.json's `chat_template`; of
   * several named templates, the one named "default". Null when the model has none.
   */
  static async fromFiles(files: ModelFiles, tokenizer: TextTokenizer): Promise<ChatTemplate | null> {
    const names = new Set(await files.list());
    let raw: unknown = tokenizer.config.chat_template;
    if (names.has('chat_template.jinja')) raw = await readText(files, 'chat_template.jinja');
    else if (names.has('chat_template.json')) {
      const json = await readJson<unknown>(files, 'chat_template.json').catch((cause: unknown) => {
        throw new Df11Error('config', `${files.location}/chat_template.json is not valid JSON`, { cause });
      });
      raw = typeof json === 'object' && json !== null ? (json as { chat_template?: unknown }).chat_template : undefined;
    }
    const source = Array.isArray(raw) ? (raw.find((t) => t?.name === 'default') ?? raw[0])?.template : raw;
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
