//! The key bindings: one table that both key handling ([`App::action_for`]) and the help overlay read, so a key
//! is added or changed in one place and the help can never disagree with what the keys do.
//!
//! Typing into the text or a prompt (letters, Backspace, Enter as a new line) is not in the table: in those modes
//! every printable key is text.

use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget};

use super::messages::Action;
use super::{App, Mode, Screen};

/// When a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// In every mode (Ctrl-C).
    Always,
    /// In every mode but typing at a prompt.
    OutsidePrompt,
    /// While typing into the Synthesize screen's text.
    Editing,
    /// Moving around (not typing), on every screen.
    Normal,
    /// Moving around on one screen.
    On(Screen),
}

/// One key and what it does.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The key.
    pub code: KeyCode,
    /// With Control held.
    pub ctrl: bool,
    /// Where it applies.
    pub when: When,
    /// What it asks for.
    pub action: Action,
}

/// One line of the help overlay and the bindings it describes.
#[derive(Debug)]
pub struct KeyHelp {
    /// The keys as the help shows them.
    pub keys: &'static str,
    /// What they do.
    pub what: &'static str,
    /// The bindings themselves.
    pub bindings: &'static [Binding],
}

const fn key(code: KeyCode, when: When, action: Action) -> Binding {
    Binding { code, ctrl: false, when, action }
}

const fn ctrl(c: char, when: When, action: Action) -> Binding {
    Binding { code: KeyCode::Char(c), ctrl: true, when, action }
}

const fn char_key(c: char, when: When, action: Action) -> Binding {
    key(KeyCode::Char(c), when, action)
}

use When::{Always, Editing, Normal, On, OutsidePrompt};

/// Every key binding, in the help overlay's order.
pub const KEYS: &[KeyHelp] = &[
    KeyHelp {
        keys: "Tab / Shift-Tab",
        what: "next / previous screen (1-5 jump)",
        bindings: &[
            key(KeyCode::Tab, Normal, Action::NextScreen),
            key(KeyCode::BackTab, Normal, Action::PrevScreen),
            char_key('1', Normal, Action::Goto(Screen::Synthesize)),
            char_key('2', Normal, Action::Goto(Screen::Live)),
            char_key('3', Normal, Action::Goto(Screen::Batch)),
            char_key('4', Normal, Action::Goto(Screen::Voices)),
            char_key('5', Normal, Action::Goto(Screen::Health)),
        ],
    },
    KeyHelp {
        keys: "i or Enter",
        what: "edit the text (Synthesize)",
        bindings: &[
            char_key('i', On(Screen::Synthesize), Action::StartEditing),
            key(KeyCode::Enter, On(Screen::Synthesize), Action::StartEditing),
        ],
    },
    KeyHelp {
        keys: "Esc",
        what: "stop editing",
        bindings: &[key(KeyCode::Esc, Editing, Action::StopEditing), key(KeyCode::Tab, Editing, Action::StopEditing)],
    },
    KeyHelp {
        keys: "↑ ↓ (k j)",
        what: "pick a control",
        bindings: &[
            key(KeyCode::Up, Normal, Action::SelectPrev),
            char_key('k', Normal, Action::SelectPrev),
            key(KeyCode::Down, Normal, Action::SelectNext),
            char_key('j', Normal, Action::SelectNext),
        ],
    },
    KeyHelp {
        keys: "← → (h l)",
        what: "change it",
        bindings: &[
            key(KeyCode::Left, Normal, Action::Decrease),
            char_key('h', Normal, Action::Decrease),
            key(KeyCode::Right, Normal, Action::Increase),
            char_key('l', Normal, Action::Increase),
        ],
    },
    KeyHelp {
        keys: "Ctrl-P / Space",
        what: "speak the text; again stops (Synthesize)",
        bindings: &[ctrl('p', OutsidePrompt, Action::Speak), char_key(' ', On(Screen::Synthesize), Action::Speak)],
    },
    KeyHelp {
        keys: "x",
        what: "stop speaking",
        bindings: &[
            char_key('x', On(Screen::Synthesize), Action::StopSpeaking),
            key(KeyCode::Esc, On(Screen::Synthesize), Action::StopSpeaking),
        ],
    },
    KeyHelp {
        keys: "[ ] then p",
        what: "pick a history entry, play it again",
        bindings: &[
            char_key('[', On(Screen::Synthesize), Action::HistoryPrev),
            char_key(']', On(Screen::Synthesize), Action::HistoryNext),
            char_key('p', On(Screen::Synthesize), Action::Replay),
        ],
    },
    KeyHelp {
        keys: "Ctrl-S",
        what: "save the text to take-NNN.wav",
        bindings: &[ctrl('s', OutsidePrompt, Action::Save)],
    },
    KeyHelp {
        keys: "Space / Enter",
        what: "start / stop live conversion (Live)",
        bindings: &[
            char_key(' ', On(Screen::Live), Action::ToggleLive),
            key(KeyCode::Enter, On(Screen::Live), Action::ToggleLive),
        ],
    },
    KeyHelp {
        keys: "d",
        what: "list the sound devices again (Live)",
        bindings: &[char_key('d', On(Screen::Live), Action::RefreshDevices)],
    },
    KeyHelp {
        keys: "Ctrl-U",
        what: "clear the text (while editing)",
        bindings: &[ctrl('u', Editing, Action::ClearText)],
    },
    KeyHelp {
        keys: "a",
        what: "add a conversion profile (Voices)",
        bindings: &[char_key('a', On(Screen::Voices), Action::StartAddProfile)],
    },
    KeyHelp {
        keys: "c f d x r",
        what: "catalogue/filter/get/remove/refresh (Voices)",
        bindings: &[
            char_key('c', On(Screen::Voices), Action::ToggleCatalog),
            char_key('f', On(Screen::Voices), Action::FilterLanguage),
            char_key('d', On(Screen::Voices), Action::DownloadVoice),
            char_key('x', On(Screen::Voices), Action::RemoveVoice),
            char_key('r', On(Screen::Voices), Action::RefreshCatalog),
        ],
    },
    KeyHelp {
        keys: "o / c / R",
        what: "open a manifest / cancel / run again (Batch)",
        bindings: &[
            char_key('o', On(Screen::Batch), Action::OpenManifest),
            char_key('c', On(Screen::Batch), Action::CancelBatch),
            char_key('R', On(Screen::Batch), Action::RerunBatch),
        ],
    },
    KeyHelp {
        keys: "w",
        what: "follow a batch another process runs (Batch)",
        bindings: &[char_key('w', On(Screen::Batch), Action::WatchBatch)],
    },
    KeyHelp {
        keys: "r",
        what: "run the health checks again (Health)",
        bindings: &[char_key('r', On(Screen::Health), Action::RefreshHealth)],
    },
    KeyHelp { keys: "?", what: "this help; any key closes it", bindings: &[char_key('?', Normal, Action::ToggleHelp)] },
    KeyHelp {
        keys: "q / Ctrl-C",
        what: "quit",
        bindings: &[char_key('q', Normal, Action::Quit), ctrl('c', Always, Action::Quit)],
    },
];

/// The action of the first binding of `code` (with Control when `ctrl`) for which `applies` holds.
fn lookup(code: KeyCode, ctrl: bool, applies: impl Fn(When) -> bool) -> Option<Action> {
    KEYS.iter()
        .flat_map(|help| help.bindings)
        .find(|b| b.code == code && b.ctrl == ctrl && applies(b.when))
        .map(|b| b.action.clone())
}

impl App {
    /// The action a key stands for here, if any.
    pub fn action_for(&self, key: KeyEvent) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl {
            let found = lookup(key.code, true, |when| match when {
                Always => true,
                OutsidePrompt => self.mode != Mode::Prompt,
                Editing => self.mode == Mode::Editing,
                Normal | On(_) => false,
            });
            if found.is_some() {
                return found;
            }
        }
        if self.show_help {
            return Some(Action::ToggleHelp);
        }
        if self.mode == Mode::Prompt {
            return match key.code {
                KeyCode::Esc => Some(Action::Cancel),
                KeyCode::Enter => Some(Action::Submit),
                KeyCode::Backspace => Some(Action::Backspace),
                KeyCode::Char(c) if !ctrl => Some(Action::Type(c)),
                _ => None,
            };
        }
        if self.screen == Screen::Synthesize && self.mode == Mode::Editing {
            // A quick Esc then a key reaches us as Alt+key: it still leaves editing.
            if key.modifiers.contains(KeyModifiers::ALT) {
                return Some(Action::StopEditing);
            }
            if let Some(action) = lookup(key.code, false, |when| when == Editing) {
                return Some(action);
            }
            return match key.code {
                KeyCode::Enter => Some(Action::Type('\n')),
                KeyCode::Backspace => Some(Action::Backspace),
                KeyCode::Char(c) if !ctrl => Some(Action::Type(c)),
                _ => None,
            };
        }
        lookup(key.code, false, |when| when == Normal || when == On(self.screen))
    }
}

/// The help overlay: every line of [`KEYS`], centred over `area`.
pub fn help(area: Rect, buf: &mut Buffer) {
    let lines: Vec<Line> = KEYS.iter().map(|k| Line::from(format!("{:<18}{}", k.keys, k.what))).collect();
    let width = 64.min(area.width);
    let height = (lines.len() as u16 + 2).min(area.height);
    let popup = Rect { x: area.x + (area.width - width) / 2, y: area.y + (area.height - height) / 2, width, height };
    Clear.render(popup, buf);
    Paragraph::new(lines).block(Block::new().borders(Borders::ALL).title(" Keys ")).render(popup, buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_key_does_two_things_in_one_place() {
        let all: Vec<&Binding> = KEYS.iter().flat_map(|k| k.bindings).collect();
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                let overlap = a.when == b.when || matches!((a.when, b.when), (Normal, On(_)) | (On(_), Normal));
                assert!(
                    !(a.code == b.code && a.ctrl == b.ctrl && overlap && a.action != b.action),
                    "{a:?} and {b:?} conflict"
                );
            }
        }
    }
}
