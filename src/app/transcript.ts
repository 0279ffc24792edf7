import type { Role } from '../engine/types.ts';

export type BubbleState = 'streaming' | 'done' | 'stopped' | 'error';

/** One message in the conversation view. */
export class Bubble {
  readonly el: HTMLElement;
  private readonly body: HTMLElement;
  private readonly note: HTMLElement;

  constructor(role: Role, text = '') {
    this.el = document.createElement('article');
    this.el.className = `msg msg-${role}`;
    this.el.dataset.role = role;
    const who = document.createElement('div');
    who.className = 'who';
    who.textContent = role === 'user' ? 'You' : 'Model';
    this.body = document.createElement('div');
    this.body.className = 'body';
    this.body.textContent = text;
    this.note = document.createElement('div');
    this.note.className = 'note muted';
    this.el.append(who, this.body, this.note);
  }

  get text(): string {
    return this.body.textContent ?? '';
  }

  append(piece: string): void {
    this.body.textContent += piece;
  }

  setState(state: BubbleState, note = ''): void {
    this.el.dataset.state = state;
    this.el.setAttribute('aria-busy', String(state === 'streaming'));
    this.note.textContent = note;
  }
}

export class Transcript {
  constructor(private readonly root: HTMLElement) {}

  add(bubble: Bubble): Bubble {
    this.root.querySelector('.empty')?.remove();
    this.root.append(bubble.el);
    this.scroll();
    return bubble;
  }

  scroll(): void {
    this.root.scrollTop = this.root.scrollHeight;
  }

  clear(): void {
    this.root.replaceChildren();
  }
}
