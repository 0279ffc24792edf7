import { Tokenizer } from '@huggingface/tokenizers';
import { Df11Error } from '../errors.ts';
import { readJson, type ModelFiles } from '../format/byte-source.ts';

/** The parts of tokenizer_config.json the engine reads. */
export interface TokenizerConfig {
  chat_template?: string | { name: string; template: string }[];
  bos_token?: string | { content: string } | null;
  eos_token?: string | { content: string } | null;
  [key: string]: unknown;
}

/** Text ↔ token ids for one model, from its tokenizer.json + tokenizer_config.json. */
export class TextTokenizer {
  readonly config: TokenizerConfig;
  /** Ids of the special (control) tokens, never shown as text. */
  readonly specialIds: ReadonlySet<number>;
  private readonly tokenizer: Tokenizer;

  constructor(tokenizerJson: object, config: TokenizerConfig) {
    try {
      this.tokenizer = new Tokenizer(tokenizerJson, config);
    } catch (cause) {
      throw new Df11Error('config', `tokenizer.json could not be loaded: ${String(cause)}`, { cause });
    }
    this.config = config;
    const special = new Set<number>();
    for (const [id, token] of this.tokenizer.get_added_tokens_decoder()) if (token.special) special.add(id);
    this.specialIds = special;
  }

  static async fromFiles(files: ModelFiles): Promise<TextTokenizer> {
    const names = new Set(await files.list());
    for (const name of ['tokenizer.json', 'tokenizer_config.json']) {
      if (!names.has(name)) throw new Df11Error('config', `${files.location} has no ${name}`);
    }
    const [json, config] = await Promise.all([
      readJson<object>(files, 'tokenizer.json'),
      readJson<TokenizerConfig>(files, 'tokenizer_config.json'),
    ]);
    return new TextTokenizer(json, config);
  }

  /** Token ids of `text`; special-token strings in the text (e.g. "<|im_start|>") map to their ids. */
  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens ?? false }).ids;
  }

  /** Text of `ids`, special tokens left out. */
  decode(ids: readonly number[]): string {
    if (ids.length === 0) return '';
    return this.tokenizer.decode(ids as number[], { skip_special_tokens: true, clean_up_tokenization_spaces: false });
  }

  tokenId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  /** The content of a special token named in tokenizer_config.json (bos_token, eos_token). */
  specialToken(key: 'bos_token' | 'eos_token'): string | undefined {
    const value = this.config[key];
    if (typeof value === 'string') return value;
    if (value && typeof value === 'object' && typeof value.content === 'string') return value.content;
    return undefined;
  }
}

/**
 * Turns a stream of token ids into a stream of text that only ever holds whole characters: byte-level
 * BPE may split one UTF-8 character over several tokens, and some decoders change a token's text
 * depending on its neighbours, so each step decodes a short window and emits what was added to it.
 */
export class StreamingDetokenizer {
  private readonly ids: number[] = [];
  /** Start of the window that is decoded again for context. */
  private prefixOffset = 0;
  /** End of what has been emitted. */
  private readOffset = 0;

  constructor(private readonly tokenizer: TextTokenizer) {}

  /** Add one token; returns the newly completed text ('' while a character is still incomplete). */
  push(id: number): string {
    this.ids.push(id);
    const prefix = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.tokenizer.decode(this.ids.slice(this.prefixOffset));
    if (full.length <= prefix.length || full.endsWith('\uFFFD')) return '';
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    return full.slice(prefix.length);
  }

  /** Whatever is left at the end of the stream (an incomplete character decodes as U+FFFD). */
  flush(): string {
    const prefix = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.tokenizer.decode(this.ids.slice(this.prefixOffset));
    this.prefixOffset = this.readOffset = this.ids.length;
    return full.length > prefix.length ? full.slice(prefix.length) : '';
  }
}
