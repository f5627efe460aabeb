"""Prompt injections in a person's words: role lines, chat-template tokens, instruction overrides and statements
that tell the assistant how to behave from now on. RE2-compatible: the firewall runs them column-wise over
every message first (tasks/firewall.py).
"""

from __future__ import annotations

# --- Injections: RE2-compatible (they run column-wise over every message first). -------------------------
# What a person tells the assistant to do when they instruct it how to talk ('you always say', 'never answer').
_TELL = (r"say|says|answer|respond|reply|speak|talk|write|call|refer|address|greet|sign|end|start|begin|output|print|"
         r"reveal|repeat|obey|follow|pretend|act|claim|insist|agree|comply|refuse|translate")
INJECTION_PATTERNS: tuple[str, ...] = (
    # Overrides of what the assistant was told.
    r"\b(?:ignore|disregard|forget|override|overwrite|bypass|skip|drop|discard|abandon|erase|delete|clear|wipe|reset|"
    r"neglect)\b[^.!?\n]{0,30}\b(?:previous|prior|above|earlier|preceding|all|any|your|the|every|those|these|system|"
    r"original|initial|old|current)\b[^.!?\n]{0,20}\b(?:instructions?|prompts?|rules|directions|guidelines|context|"
    r"programming|directives?|orders|commands|guardrails|restrictions|constraints|training|settings|messages?)\b",
    r"\bforget (?:about )?(?:everything|all|anything|what(?:ever)?)\b[^.!?\n]{0,40}\b(?:told|said|taught|learned|"
    r"learnt|know|knew|instructed|given|above|before|so far|until now|earlier)\b",
    r"\bnew (?:rules?|instructions?|directives?|orders|commands?|system (?:prompt|message)|persona|guidelines?)\s*"
    r"(?::|-|–|—)",
    r"(?m:^)\s*(?:rule|instruction|directive|override|system note|admin note|note to (?:the )?(?:ai|assistant|"
    r"model|bot))\s*(?:#?\s*\d+)?\s*:",
    r"\byou(?:['’]re| are) now\b", r"\bsystem prompt\b", r"\bjailbr[eo]ak", r"\bdeveloper mode\b",
    r"\bdo anything now\b",
    r"\b(?:reveal|print|show|repeat|output|display|leak|dump|recite)\b[^.!?\n]{0,20}\b(?:your|the) (?:system |hidden |"
    r"initial |original |secret |full )?(?:prompt|instructions|configuration)\b",
    r"\b(?:disable|turn off|remove|bypass|deactivate)\b[^.!?\n]{0,15}\b(?:safety|filters?|guardrails|restrictions|"
    r"content policy|censorship|moderation)\b",
    # What the assistant must do from now on.
    r"\b(?:from now on|henceforth|hereafter|from here on(?: out)?|from this (?:point|moment) (?:on|forward)|"
    r"going forward|starting (?:now|today|immediately)|for the rest of (?:this|our|the) (?:conversation|chat|session)|"
    r"until i say otherwise|in (?:all|every) (?:future )?(?:answers?|replies|responses|messages))\b[,:;]?\s*"
    rf"(?:please\s+)?(?:you\b|your\b|always\b|never\b|only\b|do not\b|don['’]?t\b|must\b|remember\b|stop\b|"
    rf"(?:{_TELL})\b)",
    r"\byou (?:must|will|shall|should|have to|need to|are to|['’]re to|are going to|['’]ll|are required to)\b"
    r"[^.!?\n]{0,40}\b(?:from now on|henceforth|going forward|hereafter|for the rest of)\b",
    rf"\byou(?:['’]ll| must| will| shall| should| have to| need to| are to| are going to| may)? "
    rf"(?:always|never|only) "
    rf"(?:\w+ )?(?:{_TELL})\b",
    r"\b(?:make|have|get|let|want|need|tell|ask|teach|train|program|force|instruct|order|command|require|remind) "
    r"you (?:to )?(?:always|never|only)\b",
    rf"(?:^|[.!?;:\n]\s*|\bplease\s+)(?:always|never|only) (?:{_TELL})\b",
    r"(?:^|[.!?;:\n]\s*|\bplease\s+)(?:act|behave|pretend|roleplay|role-play) (?:as|like|to be|that you|you)\b",
    r"\bpretend (?:that )?you(?:['’]re| are)\b",
    r"\b(?:ignore|disregard)\s+(?:all\s+(?:of\s+)?)?(?:the|everything)\s+(?:above|before)\b",
    r"\b(?:system|admin|developer|root)\s+override\b", r"\brepeat after me\b",
    r"\byou (?:must|will|shall|should|are to) now\b", r"\byou (?:will |must |shall )?obey\b",
    r"(?:^|[.!?;:\n]\s*|\bplease\s+)(?:speak|respond|answer|reply|talk|write)\s+only\b",
    rf"\b(?:assistant|chatbot|bot|ai|model)\s+(?:must|should|shall|has to|needs to|is to)\s+"
    rf"(?:(?:always|never|only)\s+)?(?:{_TELL})\b",
    r"\bwhen(?:ever)? you (?:answer|respond|reply|write)\b[^.!?\n]{0,20}\b(?:always|never|only|must)\b",
    r"\byour (?:new (?:name|identity|persona|role|instructions?|rules?)|name is now)\b",
    # Role lines and chat-template tokens.
    r"(?:(?m:^)|[.!?]\s+)\s*(?:#{1,4}\s*)?[\[<(]?"
    r"(?:system|user|assistant|human|ai|bot|developer|sys|instruction|response)"
    r"[\]>)]?\s*:",
    r"[\[<](?:system|assistant|user|sys)[\]>]", r"</(?:system|assistant|user)>",
    r"\[/?inst\]", r"<</?sys>>", r"<\|[a-z_]{2,30}\|>", r"</?s>", r"<(?:start|end)_of_turn>",
    r"<\|?(?:system|im_start|im_end|endoftext)\|?>",
)
