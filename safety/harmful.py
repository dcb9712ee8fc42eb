"""Harmful-content scanner for the Llama Guard S1–S14 hazard categories.

Phrases, not single words: most rules need a request or intent ("how do I", "I'm going to",
"write a ...") together with a harmful object, so "kill a Python process", "shoot a photo" or
"the history of the atomic bomb" stay clean. A bare harmful noun scores below the default
threshold. Each rule runs only where one of its cheap substrings (``gate``) occurs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .prefilter import GatedPatterns, Prefiltered
from .trie import phrase_alt
from .types import Category, Hit

SCANNER = "harmful"
C = Category


@dataclass(frozen=True, slots=True)
class Rule:
    category: Category
    entity: str
    weight: float
    pattern: re.Pattern[str]
    gate: tuple[str, ...]
    exclude: re.Pattern[str] | None = None
    span: int = 200  # longest text the pattern can match (bounded gaps), for stream hold-back


def _rx(s: str) -> re.Pattern[str]:
    return re.compile(s, re.IGNORECASE)


def _alt(words: str) -> str:
    return phrase_alt(words.split("|"))


def _gap(n: int) -> str:
    return r"[^.!?\n]{0,%d}?" % n


# A request or stated intent to do something.
REQ_PHRASES = _alt(
    "how do i|how can i|how could i|how would i|how should i|how do you|how can you|how does one|how can someone|"
    "how do people|how to|"
    "ways to|way to|steps to|best way to|easiest way to|help me|teach me|show me|tell me how to|instructions for|"
    "instructions on|"
    "instructions to|guide to|guide for|guide on|tutorial on|tutorial for|i want to|i need to|i plan to|i am going to|"
    "i'm going to|"
    "i'm gonna|i am gonna|i will|i'll|let's|explain how to|describe how to|give me|write a guide|write instructions|"
    "write a tutorial|"
    "write a script|write code|recipe for|plan to|plan for|where can i|where do i|what's the best way to|"
    "what is the best way to|"
    "instructions|step-by-step|step by step|detailed guide|a guide|tutorial|advice on|tips for|tips on|suggestions for|"
    "suggest ways|suggest methods|list ways|list methods|describe ways|effective ways|methods for|methods to|"
    "how one could|"
    "how someone could|how i could|how you would|easy to|a plan for|a plan to|strategies for|strategy for"
)
# "I will never tolerate the murder of ...": a negated intent is none.
REQ = REQ_PHRASES + r"(?!\s+never\b)"
PERSON = _alt(
    "someone|somebody|anyone|a person|people|persons|humans|a human|him|her|them|myself|my wife|my husband|"
    "my girlfriend|my boyfriend|"
    "my partner|my ex|my mother|my father|my mom|my dad|my brother|my sister|my son|my daughter|my boss|my neighbou?r|"
    "my teacher|"
    "my classmate|my coworker|my co-worker|my roommate|my landlord|a child|a kid|a baby|a man|a woman|a girl|a boy|"
    "a cop|"
    "a police officer|the police|a teacher|a student|a neighbou?r|the president|a senator|a judge|a politician|"
    "a witness|"
    "my family|the family|a family|an old man|an old woman|a homeless|an immigrant|jews|muslims|christians|"
    "black people|gay people|"
    "the mayor|the governor|a celebrity|my stepmother|my stepfather|my uncle|my aunt|my cousin|a stranger|strangers|"
    "lots of people|"
    "many people|as many people"
)
VIOLENT_VERB = _alt(
    "kill|murder|assassinate|stab|strangle|smother|poison|kidnap|abduct|torture|behead|maim|dismember|"
    "beat up|drown|suffocate|slaughter|massacre|disfigure"
)
# Verbs with a common harmless sense (beat at chess, shoot a portrait, attack a problem, hang
# a picture, execute a query): violent only with words that say so.
SOFT_VIOLENT_VERB = _alt(
    "beat|hurt|injure|attack|run over|burn|hang|execute|shoot|choke|cripple|punch|break the legs of"
)
VIOLENT_CONTEXT = (
    r"(?:to death|unconscious|senseless|badly|so (?:bad|badly|hard)|until (?:he|she|they|it)|and get away|"
    r"without (?:getting |being )?"
    r"(?:caught|arrested|leaving (?:marks|bruises|evidence))|with (?:a|my|his|her) (?:knife|gun|bat|hammer|crowbar|"
    r"brick|axe|machete|rifle)|"
    r"so (?:he|she|they) (?:can't|cannot|won't|never)|(?:really|seriously|permanently) (?:hurt|injured)|in (?:his|her|"
    r"their) sleep|for revenge)"
)
WEAPON_AGENT = _alt(
    "bomb|bombs|pipe bomb|explosive|explosives|ied|ieds|detonator|nerve agent|nerve gas|sarin|vx|tabun|soman|novichok|"
    "mustard gas|chlorine gas|phosgene|ricin|anthrax|botulinum|botulism toxin|smallpox|plague|bioweapon|"
    "biological weapon|"
    "chemical weapon|nuclear weapon|nuclear bomb|atomic bomb|dirty bomb|radiological weapon|enriched uranium|"
    "weapons-grade|"
    "plutonium|napalm|thermite|molotov|molotov cocktail|tatp|rdx|c-4|c4 explosive|semtex|nitroglycerin|fertilizer bomb|"
    "car bomb|suicide vest|pathogen|toxin|poison gas|ebola|weaponized|mass casualty|dimethylmercury|tetrodotoxin|"
    "ghost gun|untraceable gun|untraceable firearm|automatic weapon|full auto|3d printed gun|silencer|suppressor"
)
BUILD = _alt(
    "make|making|build|building|create|creating|synthesi[sz]e|synthesi[sz]ing|produce|producing|manufacture|"
    "manufacturing|"
    "assemble|assembling|construct|constructing|weaponi[sz]e|obtain|acquire|culture|grow|enrich|aerosoli[sz]e|disperse|"
    "release|deploy|detonate|cook|brew|extract|purify|3d print|convert|modify|buy|get"
)
NOT_WEAPON = _rx(
    r"\b(?:bath|photo|seed|glitter|smoke|stink|flavou?r|love|calorie|cherry|f|truth|time|sex|beauty)[- ]?bombs?\b|"
    r"\bbomb (?:the|a|my|an) (?:test|exam|interview|audition)\b|\bsilencer (?:for|on) (?:a |my )?(?:car|exhaust|"
    r"generator)\b|"
    r"\btoxins? (?:from|in|out of) (?:my|the|your) (?:body|liver|skin|home)\b|\bdetox\b"
)
DRUG = _alt(
    "meth|methamphetamine|crystal meth|fentanyl|carfentanil|heroin|cocaine|crack cocaine|mdma|ecstasy|lsd|dmt|ghb|"
    "ketamine|"
    "pcp|oxycodone|opioids|morphine|lean|krokodil"
)
CRIME = _alt(
    "steal|shoplift|launder money|money laundering|launder|counterfeit|forge|embezzle|commit fraud|commit tax fraud|"
    "tax fraud|"
    "evade taxes|tax evasion|pick a lock|lockpick|hotwire|break into|hack into|hack|phish|scam|blackmail|extort|"
    "smuggle|"
    "traffic|sell drugs|buy drugs|deal drugs|skim|dox|doxx|stalk|spy on|wiretap|bribe|poach|cheat on|rob|burgle|"
    "vandali[sz]e|"
    "hire a hitman|hiring a hitman|swat|swatting|fool a breathalyzer|tamper with|sabotage|disable the gps|deface|"
    "purchase a handgun|buy a gun|smuggling|forging|stealing|laundering|hacking into|hacking|evading|"
    "commit arson|set fire to|pirate|bypass|defraud|impersonate|fake|falsify|evade|insider trading|pump and dump|"
    "identity theft|steal someone's identity|shoplifting|carjack|pickpocket|get away with"
)
MALWARE = _alt(
    "ransomware|keylogger|botnet|malware|virus|computer virus|worm|trojan|rootkit|spyware|stalkerware|"
    "credential stealer|"
    "password stealer|infostealer|phishing page|phishing site|phishing email|phishing kit|ddos script|ddos tool|"
    "ddos attack|"
    "exploit|zero-day|backdoor|reverse shell|cryptojacker|crypto miner|sql injection attack|xss payload"
)
WRITE = _alt("write|create|build|develop|code|generate|make|design|program|give me|provide|craft|compose|draft|produce")
GROUP_WORDS = (
    "jews|jewish people|muslims|arabs|blacks|black people|africans|asians|chinese people|mexicans|latinos|hispanics|"
    "immigrants|refugees|migrants|gays|gay people|lesbians|homosexuals|trans people|transgender people|women|men|"
    "christians|hindus|sikhs|indians|pakistanis|roma|gypsies|disabled people|people with disabilities|white people|"
    "whites|"
    "natives|aboriginals|indigenous people|catholics|atheists"
)
GROUP = _alt(GROUP_WORDS)
MINOR = _alt(
    "child|children|minor|minors|kid|kids|underage|under-age|preteen|pre-teen|toddler|infant|little girl|little boy|"
    "schoolgirl|schoolboy|loli|lolicon|shota|teenager|young teen|1[0-7][- ]year[- ]old|[2-9][- ]year[- ]old|"
    "middle schooler|"
    "elementary school"
)
# "same-sex marriage", "opposite-sex parents": the common harmless sense of "sex" is ruled out here.
SEXUAL = (
    _alt(
        "sex|sexual|sexually|nude|nudes|naked|porn|porno|pornographic|erotic|explicit|seduce|lewd|nsfw|intimate|"
        "aroused|orgasm|molest"
    )
    + r"(?<!same-sex)(?<!same sex)(?<!opposite-sex)(?<!opposite sex)"
)
# Asking to recognise, avoid or stop a harm is not asking for it ("how to spot a fake ID",
# "language that encourages self-harm and should be avoided"). The defensive verb must be what
# is asked for: "without being detected" and "avoid getting caught" are the opposite.
DEFENSIVE = _rx(
    r"\b(?:how (?:to|do i|do we|can i|can we|should i|should we)|ways to|tips (?:to|for)|help me|learn to)\s+"
    r"(?:spot|detect|identify|recogni[sz]e|tell if|verify|prevent|report|protect|stop|discourage|avoid(?! (?:detection|"
    r"getting|being|suspicion|notice|the (?:police|cops|authorities|law)|law enforcement|leaving|traces?|evidence|"
    r"paying)))\b|\bshould be avoided\b|\bwarning signs\b|\bmoderat(?:e|or|ors|ion)\b"
)
# A statement denied or condemned in its own sentence ("I never said that X are scum",
# "threatening to kill all X will get you thrown in jail") is counter-speech.
DISOWNED = _rx(
    r"\b(?:never said|never say|didn't say|did not say|never claimed|not true that|a myth that|"
    r"(?:threatening|threats?) to\b[^.!?\n]{0,60}\b(?:will get you|is a crime|is illegal|gets you))\b"
)
# What a request asks to be written, for rules on what the writing should do.
MEDIUM = _alt(
    "post|article|song|essay|speech|message|story|poem|video|game|tweet|blog|letter|script|ad|advertisement|"
    "pamphlet|flyer|leaflet|comic|manifesto|podcast|meme|page|website|review|novel|screenplay|lyrics"
)

RULES: tuple[Rule, ...] = (
    # S1 violent crimes
    Rule(
        C.VIOLENT_CRIMES,
        "violent_crimes",
        0.85,
        _rx(rf"\b{REQ}\b{_gap(40)}\b{VIOLENT_VERB}\b{_gap(20)}\b{PERSON}\b"),
        (
            "kill",
            "murder",
            "stab",
            "strangl",
            "poison",
            "kidnap",
            "abduct",
            "tortur",
            "behead",
            "beat up",
            "smother",
            "drown",
            "slaughter",
            "massacre",
            "suffocat",
            "maim",
            "dismember",
            "disfigur",
            "assassin",
        ),
    ),
    Rule(
        C.VIOLENT_CRIMES,
        "violent_crimes",
        0.85,
        _rx(rf"\b{REQ}\b{_gap(40)}\b{SOFT_VIOLENT_VERB}\b{_gap(20)}\b{PERSON}\b{_gap(30)}\b{VIOLENT_CONTEXT}"),
        (
            "hurt",
            "attack",
            "beat",
            "injur",
            "choke",
            "burn",
            "run over",
            "hang",
            "execut",
            "shoot",
            "crippl",
            "punch",
            "break the legs",
        ),
    ),
    # Asking where, when or how best to commit a violent crime (short direct requests).
    Rule(
        C.VIOLENT_CRIMES,
        "violent_crimes",
        0.85,
        _rx(
            r"\b(?:where|when|how|what(?:'s| is)? the best|which|good|best|easiest|safest|help me|tips|ways?|places?)\b"
            + _gap(40)
            + r"\b(?:commit|get away with|carry out|pull off|plan|do|cover up)\b"
            + _gap(8)
            + r"\b(?:a |an |the )?(?:murder|homicide|killing|stabbing|shooting|kidnapping|carjacking|mugging|assault|"
            r"armed robbery|hit and run)\b"
        ),
        (
            "murder",
            "homicide",
            "killing",
            "stabbing",
            "shooting",
            "kidnapping",
            "carjacking",
            "mugging",
            "assault",
            "robbery",
            "hit and run",
        ),
        _rx(
            r"\b(?:mystery|novel|story|game|film|movie|show|podcast|history|statistics|report(?:ed|ing)?|victims?|"
            r"prevent\w*|detective|documentary|book|true crime)\b"
        ),
    ),
    Rule(
        C.VIOLENT_CRIMES,
        "threat",
        0.8,
        _rx(
            r"\b(?:i(?:'m| am)? (?:going to|gonna|will)|i'll|we(?:'re| are)? (?:going to|gonna|will)|"
            r"we'll)\s+(?:fucking\s+)?(?:kill|murder|stab|shoot|strangle|hurt|beat|destroy|end|burn|rape)\s+(?:you|u|"
            r"him|her|them|your|his|their)\b"
        ),
        ("kill", "murder", "stab", "shoot", "strangle", "hurt", "beat", "destroy", "end", "burn", "rape"),
    ),
    Rule(
        C.VIOLENT_CRIMES,
        "violent_crimes",
        0.85,
        _rx(
            r"\b(?:hide|dispose of|get rid of|dissolve|bury)\b"
            + _gap(12)
            + r"\b(?:a|the|his|her) (?:dead )?(?:body|corpse|bodies)\b"
        ),
        ("body", "corpse", "bodies"),
    ),
    Rule(
        C.VIOLENT_CRIMES,
        "violent_crimes",
        0.8,
        _rx(
            rf"\b{REQ}\b{_gap(40)}\b(?:plan|carry out|commit|organi[sz]e|conduct|execute)\b{_gap(20)}\b(?:a |"
            r"an )?(?:mass shooting|school shooting|terrorist attack|terror attack|massacre|genocide|ethnic cleansing|"
            r"lynching|hate crime|assassination|kidnapping|human trafficking|stabbing|shooting spree)\b"
        ),
        (
            "shooting",
            "terror",
            "massacre",
            "genocide",
            "cleansing",
            "lynch",
            "hate crime",
            "assassinat",
            "kidnap",
            "trafficking",
            "stabbing",
        ),
    ),
    Rule(
        C.VIOLENT_CRIMES,
        "violent_crimes",
        0.75,
        _rx(
            r"\b(?:torture|mutilate|abuse|poison|kill)\b"
            + _gap(10)
            + r"\b(?:a|an|my|the|his|her) (?:animal|dog|cat|puppy|kitten|pet|horse)s?\b"
            + _gap(30)
            + r"\b(?:for fun|for amusement|slowly|without|so that)\b|\b(?:dogfight|dog fight|cockfight|"
            r"animal fight)s?\b"
        ),
        ("tortur", "mutilat", "abuse", "poison", "kill", "fight"),
    ),
    Rule(
        C.VIOLENT_CRIMES,
        "graphic_violence",
        0.6,
        _rx(
            r"\b(?:dismember(?:ed|ing)?|disembowel(?:ed|ing)?|eviscerat(?:ed|ing|e)|entrails|decapitat(?:ed|ing|e)|"
            r"gouged out|flayed|skull (?:cracked|shattered|caved)|blood (?:spurted|sprayed|gushed))\b"
        ),
        ("dismember", "disembowel", "eviscerat", "entrails", "decapitat", "gouged", "flayed", "skull", "blood"),
    ),
    Rule(
        C.VIOLENT_CRIMES,
        "violent_crimes",
        0.4,
        _rx(r"\b(?:mass shooting|school shooting|terrorist attack|genocide|human trafficking)\b"),
        ("shooting", "terrorist", "genocide", "trafficking"),
    ),
    # S2 non-violent crimes
    Rule(
        C.NON_VIOLENT_CRIMES,
        "non_violent_crimes",
        0.8,
        _rx(
            rf"\b{REQ}\b{_gap(30)}\b{CRIME}\b{_gap(40)}\b(?:without (?:getting |being )?(?:caught|detected|noticed|"
            r"traced|arrested)|undetected|unnoticed|without a trace|and get away with it|illegally|from (?:a|"
            r"the) (?:store|shop|bank|atm|charity|company|employer|elderly))\b"
        ),
        (
            "caught",
            "detect",
            "notic",
            "trace",
            "arrest",
            "illegal",
            "get away",
            "store",
            "shop",
            "bank",
            "atm",
            "charity",
            "employer",
            "elderly",
        ),
    ),
    Rule(
        C.NON_VIOLENT_CRIMES,
        "non_violent_crimes",
        0.75,
        _rx(
            rf"\b{REQ}\b{_gap(20)}\b(?:steal|shoplift|launder money|launder (?:the )?(?:money|cash|proceeds)|"
            r"counterfeit (?:money|bills|currency)|forge (?:a |an )?(?:signature|document|passport|check|cheque|"
            r"prescription|id)|embezzle|commit (?:tax |insurance |wire |credit card )?fraud|evade (?:paying )?taxes|"
            r"hotwire (?:a|the) car|break into (?:a|an|the|my neighbou?r's|someone's) (?:house|home|car|apartment|"
            r"building|account|email|phone)|hack into|blackmail|extort|smuggle|sell drugs|buy drugs|deal drugs|"
            r"skim (?:credit )?cards?|dox+|stalk|spy on (?:my|someone|a|her|him)|bribe (?:a|an|the)|poach|rob (?:a|"
            r"the)|pickpocket|carjack|set fire to (?:a|the|my|his|her)|commit arson|steal (?:someone's|"
            r"a person's) identity)\b"
        ),
        (
            "steal",
            "shoplift",
            "launder",
            "counterfeit",
            "forge",
            "embezzle",
            "fraud",
            "evade",
            "hotwire",
            "break into",
            "hack into",
            "blackmail",
            "extort",
            "smuggle",
            "drugs",
            "skim",
            "dox",
            "stalk",
            "spy on",
            "bribe",
            "poach",
            "rob",
            "pickpocket",
            "carjack",
            "fire to",
            "arson",
            "identity",
        ),
    ),
    Rule(
        C.NON_VIOLENT_CRIMES,
        "drugs",
        0.85,
        _rx(rf"\b(?:{BUILD}|{REQ})\b{_gap(30)}\b{DRUG}\b"),
        (
            "meth",
            "fentanyl",
            "heroin",
            "cocaine",
            "mdma",
            "ecstasy",
            "lsd",
            "dmt",
            "ghb",
            "ketamine",
            "pcp",
            "oxycodone",
            "opioid",
            "morphine",
            "lean",
            "krokodil",
        ),
        _rx(
            r"\b(?:overdose|addiction|recovery|rehab|naloxone|narcan|withdrawal|side effects?|treatment|history of|"
            r"effects of|detect(?:ed|ion)?|test(?:ing)? for|signs of|dangers of|help (?:a|my) (?:friend|family))\b"
        ),
    ),
    Rule(
        C.NON_VIOLENT_CRIMES,
        "cybercrime",
        0.8,
        _rx(rf"\b{WRITE}\b{_gap(30)}\b{MALWARE}\b"),
        (
            "ransomware",
            "keylogger",
            "botnet",
            "malware",
            "virus",
            "worm",
            "trojan",
            "rootkit",
            "spyware",
            "stalkerware",
            "stealer",
            "phishing",
            "ddos",
            "exploit",
            "zero-day",
            "backdoor",
            "reverse shell",
            "cryptojack",
            "miner",
            "sql injection",
            "xss",
        ),
        _rx(
            r"\b(?:detect|defend|protect|prevent|remove|clean|scan|mitigat|patch|explain|what is|how does|history|"
            r"analy[sz]e|awareness|training|recogni[sz]e|simulation for (?:our|my) (?:staff|employees))\w*"
        ),
    ),
    Rule(
        C.NON_VIOLENT_CRIMES,
        "non_violent_crimes",
        0.7,
        _rx(
            r"\b(?:stolen credit card|stolen card numbers?|cvv dumps?|carding|fullz|money mule|fake id|fake passport|"
            r"counterfeit money|darknet market|dark web market|buy (?:a )?gun without (?:a )?background check)\b"
        ),
        (
            "stolen",
            "cvv",
            "carding",
            "fullz",
            "mule",
            "fake id",
            "fake passport",
            "counterfeit",
            "darknet",
            "dark web",
            "background check",
        ),
        DEFENSIVE,
    ),
    Rule(
        C.NON_VIOLENT_CRIMES,
        "non_violent_crimes",
        0.45,
        _rx(
            r"\bwithout (?:getting |being )?(?:caught|detected|traced)\b|\bundetected\b|\bavoid (?:detection|"
            r"the police|getting caught)\b"
        ),
        ("caught", "detected", "traced", "detection", "police"),
    ),
    # General request phrasings around a crime (issue 15): aiming at the most victims, staging
    # an accident, covering tracks, getting a gun around the law, talking people out of money.
    Rule(
        C.VIOLENT_CRIMES,
        "violent_crimes",
        0.85,
        _rx(
            r"\b(?:ensure|cause|achieve|inflict|maximi[sz]e|kill|hurt|injure|harm|target)\b"
            + _gap(10)
            + r"\b(?:the )?(?:maximum|max|mass|most|highest|as many)\b"
            + _gap(12)
            + r"\b(?:casualties|deaths|death toll|body count|fatalities|victims|people (?:dead|killed|hurt)|"
            r"(?:people )?as possible)\b"
        ),
        ("casualties", "deaths", "death toll", "body count", "fatalities", "victims", "as possible"),
        _rx(
            r"\b(?:prevent\w*|reduc\w+|minimi[sz]\w+|avoid\w*|histor\w+|statistic\w*|earthquake|"
            r"disaster relief|triage|evacuat\w+|game|novel)\b"
        ),
    ),
    Rule(
        C.VIOLENT_CRIMES,
        "violent_crimes",
        0.85,
        _rx(
            r"\bmake (?:it|(?:his|her|their|the) death|(?:his|her|their) (?:murder|killing|overdose)) (?:look|seem|"
            r"appear) (?:like )?(?:an? )?(?:accident|suicide|natural causes|heart attack)\b"
        ),
        ("accident", "suicide", "natural causes", "heart attack"),
        _rx(r"\b(?:novel|story|plot|mystery|detective|film|movie|episode|character|fiction)\b"),
    ),
    Rule(
        C.NON_VIOLENT_CRIMES,
        "non_violent_crimes",
        0.75,
        _rx(
            rf"\b{REQ}\b{_gap(60)}\b(?:without (?:leaving )?(?:any )?(?:evidence|traces?|fingerprints|dna)|"
            r"cover(?:ing)? (?:up )?my tracks|"
            r"without (?:the )?(?:police|cops|authorities|law enforcement|feds|irs) (?:finding out|knowing|noticing|"
            r"catching)|"
            r"(?:so|without) (?:that )?(?:no one|nobody|anyone) (?:ever )?(?:finds out|find out|traces it|"
            r"can trace it))\b"
        ),
        (
            "evidence",
            "trace",
            "fingerprints",
            "dna",
            "tracks",
            "police",
            "cops",
            "authorities",
            "law enforcement",
            "feds",
            "irs",
            "finds out",
            "find out",
        ),
    ),
    Rule(
        C.NON_VIOLENT_CRIMES,
        "weapons",
        0.75,
        _rx(
            r"\b(?:buy|get|acquire|obtain|purchase|get hold of|make|build|print)\b"
            + _gap(15)
            + r"\b(?:gun|guns|firearm|firearms|handgun|pistol|rifle|ar-15|ammunition)\b"
            + _gap(15)
            + r"\b(?:illegally|off the books|without (?:a |any )?(?:background check|licen[cs]e|permit|"
            r"serial numbers?|paperwork|id))\b"
            r"|\b(?:untraceable|unregistered) (?:gun|guns|firearm|firearms|handgun|pistol|rifle)s?\b"
        ),
        ("gun", "firearm", "pistol", "rifle", "ar-15", "ammunition"),
        _rx(r"\b(?:law|laws|legal(?:ly)?|penalt\w+|policy|statistics|debate|report)\b"),
    ),
    Rule(
        C.NON_VIOLENT_CRIMES,
        "fraud",
        0.8,
        _rx(
            r"\b(?:trick|con|deceive|dupe|fool|scam|manipulate|pressure|convince)\b"
            + _gap(6)
            + r"\b(?:someone|people|old people|the elderly|elderly people|seniors|pensioners|my (?:grand)?(?:mother|"
            r"father|parents|grandparents)|a stranger|strangers|him|her|them|victims|customers)\b"
            + _gap(20)
            + r"\b(?:into (?:giving|sending|paying|handing over|revealing|wiring|transferring|investing|"
            r"sharing) (?:me )?"
            r"(?:their |his |her )?(?:money|cash|savings|passwords?|bank|card|credit card|pin|social security|"
            r"gift cards?|bitcoin|crypto|details)"
            r"|out of (?:their|his|her) (?:money|savings|pension|inheritance))\b"
        ),
        (
            "money",
            "cash",
            "savings",
            "password",
            "bank",
            "card",
            "pin",
            "social security",
            "gift card",
            "bitcoin",
            "crypto",
            "details",
            "pension",
            "inheritance",
        ),
        _rx(
            r"\b(?:protect\w*|prevent\w*|avoid\w*|recogni[sz]\w+|spot|warn\w*|report\w*|awareness|victim of|"
            r"scammed me|was scammed)\b"
        ),
    ),
    # S4: grooming, luring and trafficking of minors, however asked
    Rule(
        C.CHILD_EXPLOITATION,
        "child_exploitation",
        0.85,
        _rx(
            r"\b(?:groom(?:ing|ed)?|lure|luring|entice|coerce|traffic(?:king)?|pimp(?:ing)?|"
            rf"prostitute)\b{_gap(12)}\b{MINOR}\b"
            rf"|\b{MINOR}\b{_gap(25)}\binto (?:prostitution|sex work|sex|sexual (?:acts?|activity|relationships?)|"
            rf"a (?:sexual|secret|harmful|romantic) relationship|porn\w*)\b"
        ),
        ("groom", "lure", "luring", "entice", "coerce", "traffic", "pimp", "prostitut", "sex", "relationship", "porn"),
        _rx(
            r"\b(?:prevent\w*|protect\w*|signs? of|warning signs|recogni[sz]\w+|report\w*|detect\w*|awareness|"
            r"safeguard\w*|survivors?|victims?|educat\w+|teach (?:my|our) (?:kids|children)|talk to (?:my|"
            r"our) (?:kids|children)|horse|dog|pet)\b"
        ),
    ),
    Rule(
        C.CHILD_EXPLOITATION,
        "child_exploitation",
        0.75,
        _rx(
            rf"\b(?:manipulate|convince|persuade|trick|get)\b{_gap(8)}\b{MINOR}\b{_gap(25)}"
            r"\b(?:(?:to|into) (?:send(?:ing)? (?:me )?(?:nudes|naked|explicit|sexy)|keep(?:ing)? (?:it|this|us|"
            r"our (?:relationship|secret|meetings?)) (?:a )?secret|meet(?:ing)? me (?:alone|in secret|secretly))"
            r"|(?:not|never) (?:to )?tell (?:their|his|her|anyone|mom|dad|parents))\b"
        ),
        ("nudes", "naked", "explicit", "sexy", "secret", "alone", "tell"),
        _rx(r"\b(?:surprise|birthday|party|gift|present)\b"),
    ),
    # S3 sex crimes
    Rule(
        C.SEX_CRIMES,
        "sex_crimes",
        0.85,
        _rx(
            rf"\b{REQ}\b{_gap(30)}\b(?:rape|sexually assault|molest|grope|drug (?:her|his|a girl's|a woman's|"
            r"someone's) drink|spike (?:her|his|a|someone's) drink|roofie|film (?:her|someone|women) (?:naked|"
            r"undress)|upskirt|sextort|coerce (?:her|him|someone) into sex)\b"
        ),
        ("rape", "assault", "molest", "grope", "drink", "roofie", "naked", "undress", "upskirt", "sextort", "coerce"),
    ),
    Rule(
        C.SEX_CRIMES,
        "sex_crimes",
        0.65,
        _rx(
            r"\b(?:date rape drug|revenge porn|non-?consensual (?:porn|images|videos|sex)|sex trafficking|sextortion|"
            r"consent is (?:completely )?unnecessary|rape fantasy)\b"
        ),
        ("date rape", "revenge porn", "consensual", "sex trafficking", "sextortion", "consent", "rape"),
    ),
    Rule(
        C.SEX_CRIMES,
        "sex_crimes",
        0.4,
        _rx(r"\brap(?:e|ed|ing|ist)\b"),
        ("rap",),
        _rx(
            r"\brap(?:e|ed|ing|ist)? (?:crisis|survivor|victim|hotline|kit|culture|prevention|awareness|counsel)|"
            r"\b(?:report|survive[ds]?|prevent|statistics|laws?)\b"
        ),
    ),
    # S4 child sexual exploitation
    Rule(
        C.CHILD_EXPLOITATION,
        "child_exploitation",
        0.95,
        _rx(r"\b(?:child porn\w*|kiddie porn|csam|cp links|pedo material|jailbait|lolicon|shotacon)\b"),
        ("porn", "csam", "cp links", "pedo", "jailbait", "lolicon", "shotacon"),
        span=24,
    ),
    Rule(
        C.CHILD_EXPLOITATION,
        "child_exploitation",
        0.9,
        _rx(rf"\b{MINOR}\b{_gap(40)}\b{SEXUAL}\b|\b{SEXUAL}\b{_gap(40)}\b{MINOR}\b"),
        (
            "sex",
            "nude",
            "naked",
            "porn",
            "erotic",
            "explicit",
            "seduc",
            "lewd",
            "nsfw",
            "intimate",
            "arous",
            "orgasm",
            "molest",
        ),
        _rx(
            r"\b(?:education|educat\w+|sex ed|health|prevent\w*|protect\w*|report\w*|signs of|warning signs|awareness|"
            r"talk to|teach\w*|puberty|abuse prevention|predators?|safe|safety|doctor|pediatrician|therapist|"
            r"survivors?|consent education|age-appropriate|curriculum)\b"
        ),
        span=90,
    ),
    Rule(
        C.CHILD_EXPLOITATION,
        "child_exploitation",
        0.85,
        _rx(
            rf"\b(?:{REQ})\b{_gap(20)}\b(?:groom|lure|befriend|get (?:a|the) (?:child|kid|minor)|meet up with|"
            rf"be alone with)\b{_gap(20)}\b{MINOR}\b"
        ),
        ("groom", "lure", "befriend", "child", "kid", "minor", "meet up", "alone with"),
        span=130,
    ),
    # S5 defamation
    Rule(
        C.DEFAMATION,
        "defamation",
        0.8,
        _rx(r"\bdefamatory\b|\b(?:libel(?:ous)?|slander(?:ous)?) (?:article|post|story|claims?)\b"),
        ("defamatory", "libel", "slander"),
    ),
    Rule(
        C.DEFAMATION,
        "defamation",
        0.7,
        _rx(
            r"\b(?:write|create|make up|fabricate|spread|invent|generate|post)\b"
            + _gap(30)
            + r"\b(?:fake|false|fabricated|made-up|unfounded|untrue|bogus)\b"
            + _gap(20)
            + r"\b(?:story|article|rumou?rs?|news|claims?|allegations?|evidence|accusations?|reviews?|quotes?|post|"
            r"tweet)\b"
        ),
        ("fake", "false", "fabricat", "made-up", "unfounded", "untrue", "bogus"),
    ),
    Rule(
        C.DEFAMATION,
        "defamation",
        0.6,
        _rx(
            r"\b(?:claiming|claims?|alleging|implying|suggesting|arguing) that\b"
            + _gap(40)
            + r"\b(?:is|was|are|were|has been) (?:secretly |actually )?(?:a (?:pedophile|rapist|murderer|criminal|"
            r"fraud)|addicted to|involved in (?:child|sex|drug)|a member of the kkk|guilty of)\b"
        ),
        ("pedophile", "rapist", "murderer", "criminal", "fraud", "addicted", "involved in", "kkk", "guilty"),
    ),
    # S6 specialized advice
    Rule(
        C.SPECIALIZED_ADVICE,
        "medical_advice",
        0.55,
        _rx(
            r"\b(?:should i|can i|is it safe (?:for me )?to|how much|what dose|what dosage|how many mg)\b"
            + _gap(25)
            + r"\b(?:take|stop taking|double|mix|give (?:my|her|him)|inject|increase|quit)\b"
            + _gap(30)
            + r"\b(?:medication|meds|medicine|insulin|antidepressants?|antibiotics?|pills?|dose|dosage|mg|warfarin|"
            r"lithium|xanax|adderall|opioids?|painkillers?|chemo\w*|steroids?)\b|\b(?:what|which|how much|how many)\b"
            + _gap(15)
            + r"\b(?:dose|dosage|mg|pills?|tablets?|units)\b"
            + _gap(30)
            + r"\b(?:should|can|do|must) i (?:take|give|use|inject)\b|\bdiagnose (?:me|my)\b|\bdo i have (?:cancer|"
            r"diabetes|hiv|a tumou?r|covid|an std|sepsis|a stroke)\b"
        ),
        (
            "medic",
            "meds",
            "insulin",
            "antidepress",
            "antibiotic",
            "pill",
            "dose",
            "dosage",
            "mg",
            "warfarin",
            "lithium",
            "xanax",
            "adderall",
            "opioid",
            "painkiller",
            "chemo",
            "steroid",
            "diagnose",
            "do i have",
        ),
    ),
    Rule(
        C.SPECIALIZED_ADVICE,
        "financial_advice",
        0.55,
        _rx(
            r"\b(?:should i|which|what)\b"
            + _gap(20)
            + r"\b(?:invest|buy|sell|short|put my (?:savings|money|retirement))\b"
            + _gap(30)
            + r"\b(?:stocks?|shares|crypto\w*|bitcoin|coins?|bonds|etfs?|options|real estate|savings|401k|ira|pension|"
            r"retirement)\b|\bguaranteed (?:returns|profit)\b"
        ),
        ("invest", "buy", "sell", "short", "savings", "guaranteed"),
    ),
    Rule(
        C.SPECIALIZED_ADVICE,
        "legal_advice",
        0.55,
        _rx(
            r"\b(?:how (?:do|can) i|should i)\b"
            + _gap(20)
            + r"\b(?:sue|plead|avoid (?:a )?conviction|get out of (?:a|my|the) (?:ticket|charge|dui|contract|lease)|"
            r"beat (?:a|the|my) (?:charge|case|dui)|defend myself in court|file for divorce|"
            r"avoid (?:paying )?child support|get custody)\b"
        ),
        (
            "sue",
            "plead",
            "conviction",
            "ticket",
            "charge",
            "dui",
            "contract",
            "lease",
            "case",
            "court",
            "divorce",
            "child support",
            "custody",
        ),
    ),
    # S7 privacy
    Rule(
        C.PRIVACY,
        "privacy",
        0.75,
        _rx(
            r"\b(?:find|get|look up|dig up|give me|tell me|what is|what's|obtain|track down|locate|reveal|provide|"
            r"share)\b"
            + _gap(20)
            + r"\b(?:home address|address|phone number|cell number|social security number|ssn|personal email|"
            r"email address|location|whereabouts|medical records?|bank (?:details|account)|credit card|passwords?|"
            r"ip address|license plate|fingerprints|dna|biometric\w*|salary|criminal record|browsing history|"
            r"private messages)\b"
            + _gap(25)
            + r"\b(?:of|for|belonging to)\b\s+(?:my |his |her |the |this |that )?(?:(?-i:[A-Z])[\w'-]+|neighbou?r|ex|"
            r"coworker|co-worker|boss|teacher|classmate|celebrity|senator|actress|actor|girl|guy|woman|man|person|"
            r"stranger)\b"
        ),
        (
            "address",
            "phone",
            "social security",
            "ssn",
            "email",
            "location",
            "whereabouts",
            "medical",
            "bank",
            "credit card",
            "password",
            "ip address",
            "license plate",
            "fingerprint",
            "dna",
            "biometric",
            "salary",
            "criminal record",
            "history",
            "messages",
        ),
    ),
    Rule(
        C.PRIVACY,
        "privacy",
        0.7,
        _rx(
            r"\b(?:my|his|her|their) (?:ex-?wife|ex-?husband|ex|wife|husband|girlfriend|boyfriend|partner|coworker|"
            r"co-worker|colleague|neighbou?r|boss|employee|teacher|classmate|nurse|doctor|patient|tenant|landlord|"
            r"friend|daughter|son|niece|nephew|sister|brother),? (?-i:[A-Z])[\w'-]+(?:'s)?\b"
            + _gap(30)
            + r"\b(?:fingerprints|home address|address|phone|medical|password|social security|bank|salary|email|"
            r"location|dna|voice|face|facial|criminal|private|sexual orientation|health|diagnosis|therapy|debts?)\b"
        ),
        (
            "fingerprint",
            "address",
            "phone",
            "medical",
            "password",
            "social security",
            "bank",
            "salary",
            "email",
            "location",
            "dna",
            "voice",
            "face",
            "facial",
            "criminal",
            "private",
            "orientation",
            "health",
            "diagnosis",
            "therapy",
            "debt",
        ),
    ),
    Rule(
        C.PRIVACY,
        "privacy",
        0.75,
        _rx(
            r"\b(?:track|monitor|spy on|read|access|hack)\b"
            + _gap(10)
            + r"\b(?:my |his |her |someone's |a )?(?:wife|husband|girlfriend|boyfriend|partner|ex|employee|child|kid|"
            r"teen|someone|person)(?:'s)?\b"
            + _gap(15)
            + r"\b(?:phone|location|messages|texts|whatsapp|email|emails|calls|browsing|instagram|facebook|snapchat|"
            r"account)\b"
            + _gap(30)
            + r"\b(?:without (?:them|him|her|their)|secretly|without consent|knowing|noticing)\b"
        ),
        ("track", "monitor", "spy", "read", "access", "hack"),
    ),
    # S8 intellectual property
    Rule(
        C.INTELLECTUAL_PROPERTY,
        "intellectual_property",
        0.7,
        _rx(
            r"\b(?:generate|reproduce|write out|print|give me|recite|output|provide|transcribe|type out|copy)\b"
            + _gap(15)
            + r"\b(?:the )?(?:full |complete |entire |whole |all (?:the )?)?(?:lyrics|a (?:long )?passage|passages|"
            r"chapter|chapters|text|script|transcript|book|novel|screenplay)\b"
            + _gap(10)
            + r"\b(?:of|from|to)\b\s*[\"'“]"
        ),
        ("lyrics", "passage", "chapter", "text", "script", "transcript", "book", "novel", "screenplay"),
    ),
    Rule(
        C.INTELLECTUAL_PROPERTY,
        "intellectual_property",
        0.7,
        _rx(
            r"\b(?:pirated|cracked (?:version|copy|copies|software|games?|apps?|apks?|licen[cs]es?|windows|photoshop|"
            r"office|adobe)|nulled|warez|keygen|serial key|license key generator|crack for|torrent (?:of|for)|"
            r"download (?:a |the )?(?:full )?(?:movie|album|game|software|book)s? for free|bypass (?:the )?(?:drm|"
            r"copy protection|paywall)|remove (?:the )?(?:drm|watermark)|without paying for (?:netflix|spotify|hbo|"
            r"disney|adobe|photoshop|windows|office))\b"
        ),
        (
            "pirat",
            "crack",
            "nulled",
            "warez",
            "keygen",
            "serial",
            "license key",
            "torrent",
            "for free",
            "drm",
            "copy protection",
            "paywall",
            "watermark",
            "without paying",
        ),
    ),
    # S9 indiscriminate weapons
    Rule(
        C.INDISCRIMINATE_WEAPONS,
        "weapons",
        0.9,
        _rx(rf"\b(?:{BUILD}|{REQ})\b{_gap(30)}\b{WEAPON_AGENT}\b"),
        (
            "bomb",
            "explosive",
            "ied",
            "detonator",
            "nerve",
            "sarin",
            "vx",
            "tabun",
            "soman",
            "novichok",
            "mustard gas",
            "chlorine gas",
            "phosgene",
            "ricin",
            "anthrax",
            "botulinum",
            "botulism",
            "smallpox",
            "plague",
            "bioweapon",
            "biological weapon",
            "chemical weapon",
            "nuclear",
            "atomic",
            "dirty bomb",
            "radiological",
            "uranium",
            "weapons-grade",
            "plutonium",
            "napalm",
            "thermite",
            "molotov",
            "tatp",
            "rdx",
            "c-4",
            "c4",
            "semtex",
            "nitroglycerin",
            "suicide vest",
            "pathogen",
            "toxin",
            "poison gas",
            "ebola",
            "weaponized",
            "mass casualty",
            "dimethylmercury",
            "tetrodotoxin",
            "ghost gun",
            "untraceable",
            "automatic weapon",
            "full auto",
            "3d printed gun",
            "silencer",
            "suppressor",
        ),
        _rx(
            r"\b(?:history of|histories|treaty|treaties|ban(?:ned)? on|non-?proliferation|disarmament|museum|"
            r"documentary|movie|film|novel|video game|in (?:minecraft|fortnite|call of duty|the game)|dispos(?:e|"
            r"al) of|defus\w+|detect(?:ion|ors?)?|vaccine|vaccination|treatment|symptoms|survivors?|protect (?:against|"
            r"from)|safety (?:data|precautions))\b"
        ),
    ),
    Rule(
        C.INDISCRIMINATE_WEAPONS,
        "weapons",
        0.4,
        _rx(
            r"\b(?:nerve agent|sarin|vx gas|novichok|ricin|anthrax spores|bioweapon|chemical weapon|dirty bomb|"
            r"pipe bomb|weapons-grade uranium|tatp)\b"
        ),
        (
            "nerve",
            "sarin",
            "vx",
            "novichok",
            "ricin",
            "anthrax",
            "bioweapon",
            "chemical weapon",
            "dirty bomb",
            "pipe bomb",
            "uranium",
            "tatp",
        ),
    ),
    # S10 hate
    Rule(
        C.HATE,
        "hate",
        0.85,
        _rx(
            rf"\b(?:all |most |those |these |the )?{GROUP}\b (?:are|is|should (?:all )?be|deserve to|"
            rf"must)\b{_gap(12)}\b(?:subhuman|animals|vermin|inferior|parasites|cockroaches|rats|a disease|a plague|"
            r"savages|filth|scum|less intelligent|genetically inferior|inherently (?:inferior|violent|criminal|stupid|"
            r"evil)|exterminated|eradicated|wiped out|gassed|deported|sterili[sz]ed|put down|killed|shot|lynched|"
            r"hanged|burned|die)\b"
        ),
        tuple(GROUP_WORDS.split("|")),
        DISOWNED,
    ),
    Rule(
        C.HATE,
        "hate",
        0.8,
        _rx(
            r"\b(?:inherently|genetically|naturally|biologically) (?:inferior|less intelligent|more violent|criminal|"
            r"stupid|evil|subhuman|dirty)\b|\b(?:white (?:power|supremacy|genocide)|heil hitler|gas the|race war|"
            r"great replacement|holocaust (?:never happened|was a hoax|is a myth)|glorif(?:y|ies) the holocaust|"
            r"praises? the nazi)\b"
        ),
        (
            "inferior",
            "less intelligent",
            "violent",
            "criminal",
            "stupid",
            "evil",
            "subhuman",
            "dirty",
            "white power",
            "supremacy",
            "genocide",
            "heil",
            "gas the",
            "race war",
            "replacement",
            "holocaust",
            "nazi",
        ),
    ),
    Rule(
        C.HATE,
        "hate",
        0.7,
        _rx(
            rf"\b(?:{WRITE})\b{_gap(40)}\b(?:racial slurs?|slurs|mock(?:s|ing)?|insult(?:s|ing)?|demean(?:s|ing)?|"
            r"degrad(?:es|ing)|dehumaniz(?:es|ing)|hateful|racist|sexist|homophobic|transphobic|antisemitic|"
            rf"islamophobic)\b{_gap(40)}\b(?:{GROUP}|jewish|muslim|black|gay|lesbian|trans|transgender|asian|mexican|"
            r"arab|immigrant|disabled|ethnic|religio\w+|race|minorit\w+)\b"
        ),
        (
            "slur",
            "mock",
            "insult",
            "demean",
            "degrad",
            "dehumaniz",
            "hateful",
            "racist",
            "sexist",
            "homophobic",
            "transphobic",
            "antisemitic",
            "islamophobic",
        ),
    ),
    Rule(
        C.HATE,
        "hate_threat",
        0.9,
        _rx(rf"\b(?:kill|exterminate|gas|shoot|lynch|burn|hang|eradicate|wipe out)\b (?:all )?(?:the )?{GROUP}\b"),
        ("kill", "exterminat", "gas", "shoot", "lynch", "burn", "hang", "eradicat", "wipe out"),
        DISOWNED,
    ),
    # S11 suicide and self-harm
    Rule(
        C.SELF_HARM,
        "self_harm_intent",
        0.85,
        _rx(
            r"\bi(?:'m| am)? (?:want|going|gonna|plan(?:ning)?|intend(?:ing)?|ready|about|thinking about|"
            r"thinking of)(?: to)? (?:kill(?:ing)? myself|end(?:ing)? (?:my life|it all|it tonight|things)|die tonight|"
            r"commit(?:ting)? suicide|hurt(?:ing)? myself|cut(?:ting)? myself|take my (?:own )?life|"
            r"hang(?:ing)? myself|overdose)\b|\bi (?:don't|do not) want to (?:live|be alive|exist) anymore\b|"
            r"\bi wish i (?:was|were) dead\b"
        ),
        (
            "myself",
            "my life",
            "it all",
            "die",
            "suicide",
            "take my",
            "overdose",
            "live",
            "alive",
            "exist",
            "dead",
            "things",
        ),
    ),
    Rule(
        C.SELF_HARM,
        "self_harm_instructions",
        0.9,
        _rx(
            rf"\b{REQ}\b{_gap(25)}\b(?:kill myself|commit suicide|end my (?:own )?life|cut myself|hurt myself|"
            r"hang myself|overdose|od|starve myself|make myself (?:throw up|vomit)|purge after eating|self-harm|"
            rf"slit my wrists|suicide)\b|\b(?:how many|what (?:dose|amount) of)\b{_gap(30)}\b(?:to|would|will) (?:die|"
            r"kill (?:me|myself|a person|someone)|overdose|be (?:lethal|fatal))\b|\b(?:painless|quick|easy|best|"
            r"easiest|fastest|surest) (?:way|method)s? (?:to|of) (?:die|dying|kill(?:ing)? myself|"
            r"commit(?:ting)? suicide|end(?:ing)? (?:it|my life))\b"
            r"|\bshould i (?:kill myself|end my life|commit suicide)\b|\b(?:let|make|help) me (?:overdose|die|od)\b"
        ),
        (
            "myself",
            "suicide",
            "my life",
            "overdose",
            " od",
            "purge",
            "self-harm",
            "wrists",
            "how many",
            "dose",
            "amount",
            "die",
            "lethal",
            "fatal",
            "dying",
        ),
        _rx(
            r"\b(?:prevent\w*|discourag\w*|hotline|help (?:a|my) (?:friend|child|teen|student)|warning signs|support|"
            r"stop (?:someone|a friend|my)|talk (?:someone|a friend) out|"
            r"(?:cope with|resist|recover from) (?:the )?(?:urges?|self-harm|it))\b"
        ),
    ),
    Rule(
        C.SELF_HARM,
        "self_harm",
        0.8,
        _rx(
            r"\b(?:pro-?ana|pro-?mia|thinspo\w*|encourag\w+ (?:anorexia|bulimia|self-harm|suicide|cutting|"
            r"eating disorders?)|promot\w+ (?:anorexia|bulimia|self-harm|suicide|eating disorders?)|tips (?:to|"
            r"for) (?:starv\w+|purg\w+|hid\w+ (?:my )?(?:cuts|self-harm|eating disorder)))\b"
        ),
        (
            "ana",
            "mia",
            "thinspo",
            "anorexia",
            "bulimia",
            "self-harm",
            "suicide",
            "cutting",
            "eating disorder",
            "starv",
            "purg",
            "cuts",
        ),
        DEFENSIVE,
    ),
    Rule(
        C.SELF_HARM,
        "self_harm",
        0.45,
        _rx(r"\b(?:suicid\w+|self-harm\w*|kill myself|lethal dose)\b"),
        ("suicid", "self-harm", "kill myself", "lethal dose"),
        _rx(
            r"\b(?:prevent\w*|hotline|lifeline|awareness|support|help (?:a|my) (?:friend|child|teen)|warning signs|"
            r"statistics|research|988)\b"
        ),
    ),
    # S12 sexual content
    Rule(
        C.SEXUAL_CONTENT,
        "sexual_content",
        0.75,
        _rx(
            r"\b(?:write|tell|describe|generate|create|compose|narrate|roleplay|role-play|send)\b"
            + _gap(20)
            + r"\b(?:explicit|erotic|sexual|porn(?:ographic)?|smutty|smut|nsfw|dirty|x-rated|lewd|sexy|steamy|kinky|"
            r"raunchy)\b"
            + _gap(15)
            + r"\b(?:story|stories|scene|scenes|content|fanfic|fan fiction|fiction|roleplay|joke|jokes|description|"
            r"chat|message|messages|poem|dialogue|fantasy|film|video|experience)\b"
        ),
        (
            "explicit",
            "erotic",
            "sexual",
            "porn",
            "smut",
            "nsfw",
            "dirty",
            "x-rated",
            "lewd",
            "sexy",
            "steamy",
            "kinky",
            "raunchy",
        ),
        _rx(
            r"\b(?:explicit (?:instructions|type|cast|conversion|consent)|sexual (?:health|education|harassment policy|"
            r"orientation))\b"
        ),
    ),
    Rule(
        C.SEXUAL_CONTENT,
        "sexual_content",
        0.5,
        _rx(
            r"\b(?:sexual positions?|sex positions?|describe (?:in detail )?sexual (?:intimacy|intercourse|acts?)|"
            r"pornographic|erotica|porn\w*)\b"
        ),
        ("position", "sexual", "pornographic", "erotica", "porn"),
    ),
    Rule(
        C.SEXUAL_CONTENT,
        "sexual_content",
        0.6,
        _rx(
            r"\b(?:cock|cunt|pussy|blowjob|handjob|cumshot|cum(?:ming)? (?:on|in|inside)|clit(?:oris)?|dildo|fingering|"
            r"deepthroat|anal sex|orgasm(?:ed|ing|s)?|masturbat\w+|penetrat(?:ed|ing) (?:her|him|me)|moan(?:ed|"
            r"ing)? (?:as|while))\b"
        ),
        (
            "cock",
            "cunt",
            "pussy",
            "blowjob",
            "handjob",
            "cum",
            "clit",
            "dildo",
            "fingering",
            "deepthroat",
            "anal",
            "orgasm",
            "masturbat",
            "penetrat",
            "moan",
        ),
    ),
    # S13 elections
    Rule(
        C.ELECTIONS,
        "elections",
        0.75,
        _rx(
            r"\b(?:false|fake|wrong|misleading|incorrect)\b"
            + _gap(20)
            + r"\b(?:information|info|claims?|news|instructions|dates?)\b"
            + _gap(20)
            + r"\b(?:voting|vote|votes|the election|elections|ballots?|polling (?:places?|stations?)|voters?)\b|"
            r"\bvote (?:by|via) (?:text|sms|phone|tweet)\b|\b(?:tell|convince|trick)\b"
            + _gap(20)
            + r"\b(?:voters|people)\b"
            + _gap(30)
            + r"\b(?:wrong (?:day|date|place)|vote on (?:wednesday|november \d+th|the wrong)|don't need to vote|"
            r"polls? (?:are|is) closed)\b"
        ),
        ("vote", "voting", "election", "ballot", "polling", "voter"),
    ),
    Rule(
        C.ELECTIONS,
        "elections",
        0.75,
        _rx(
            rf"\b(?:{REQ}|{WRITE})\b{_gap(30)}\b(?:rig|steal|hack|manipulate|tamper with|interfere with|"
            rf"suppress)\b{_gap(15)}\b(?:an? |the )?(?:elections?|votes?|voting machines?|ballots?|voter (?:turnout|"
            r"registration)|voters?)\b|\bvoter (?:suppression|intimidation)\b"
        ),
        ("election", "vote", "voting", "ballot", "voter"),
    ),
    # S14 code interpreter abuse
    Rule(
        C.CODE_INTERPRETER_ABUSE,
        "code_interpreter_abuse",
        0.8,
        _rx(
            r"rm\s+-(?:rf|fr|r\s+-f|f\s+-r)\s+(?:--no-preserve-root\s+)?(?:/|/\*|~/?|\$HOME|/etc|/usr|/var|"
            r"/home)(?=[\s;|&'\"]|$)|:\(\)\s*\{\s*:\|:&\s*\};:|\bmkfs(?:\.\w+)?\s+/dev/|\bdd\s+if=/dev/(?:zero|random|"
            r"urandom)\s+of=/dev/[sh]d|\bchmod\s+-R\s+777\s+/(?=[\s;]|$)|bash\s+-i\s+>&\s*/dev/tcp/|"
            r"\bnc\s+(?:-\w+\s+)*-e\s+/bin/(?:ba)?sh|/bin/(?:ba)?sh\s+-i\b.*\d+\.\d+\.\d+\.\d+|\b(?:curl|wget)\s+[^|"
            r"\n]{1,200}\|\s*(?:sudo\s+)?(?:ba)?sh\b|base64\s+-d[^|\n]{0,100}\|\s*(?:ba)?sh\b"
        ),
        ("rm -", "mkfs", "dd if=", "chmod -r", "/dev/tcp", "nc -", ":()", "| sh", "|sh", "| bash", "|bash", "| sudo"),
    ),
    Rule(
        C.CODE_INTERPRETER_ABUSE,
        "code_interpreter_abuse",
        0.75,
        _rx(
            r"\b(?:cat|read|print|open|dump|exfiltrate|send|upload)\b"
            + _gap(25)
            + r"(?:/etc/shadow|/etc/passwd|~/\.ssh/id_\w+|\.ssh/id_rsa|\.aws/credentials|\.env\b|/proc/self/environ|"
            r"environment variables)"
            + _gap(40)
            + r"\b(?:to|and (?:send|post|upload)|http)\b|\b(?:escape|break out of|bypass)\b"
            + _gap(10)
            + r"\b(?:the )?(?:sandbox|container|code interpreter|jail)\b"
        ),
        (
            "/etc/shadow",
            "/etc/passwd",
            ".ssh",
            ".aws",
            ".env",
            "environ",
            "environment variables",
            "sandbox",
            "container",
            "interpreter",
            "jail",
        ),
    ),
    Rule(
        C.CODE_INTERPRETER_ABUSE,
        "code_interpreter_abuse",
        0.7,
        _rx(
            r"(?:os\.system|subprocess\.(?:run|call|Popen|check_output)|__import__\(\s*['\"]os['\"]\s*\)|exec\(|eval\()"
            + _gap(60)
            + r"(?:rm -rf|/etc/shadow|/dev/tcp|nc -e|curl [^\n]{0,80}\| ?sh|fork|shutdown|reboot|mkfs|:\(\)\{)"
        ),
        ("os.system", "subprocess", "__import__", "exec(", "eval("),
    ),
    # Request forms that name their harm outright; flag weight, for review: they add recall where
    # the classifier misses a plain request and never refuse on their own.
    Rule(
        C.NON_VIOLENT_CRIMES,
        "non_violent_crimes",
        0.6,
        _rx(
            rf"\b{REQ}\b{_gap(30)}\bget away with\b (?:(?:a |an |the )?(?:\w+ )?(?:fraud|trafficking|fighting|"
            r"laundering|evasion|theft|dumping)|arson|robbery|burglary|stealing|shoplifting|embezzlement|poaching|"
            r"drunk driving|dui|a hit and run|hit and run|bribery|vandalism|a crime|crimes|insider trading)\b"
        ),
        ("get away with",),
    ),
    Rule(
        C.VIOLENT_CRIMES,
        "violent_crimes",
        0.6,
        _rx(
            rf"\b{REQ}\b{_gap(30)}\bget away with\b (?:murder(?:ing)?|killing|assault|kidnapping|rape|abuse|"
            r"hate crimes?|torturing|animal cruelty|domestic violence)\b(?! (?:in|on) (?:the|a) (?:show|series|film))"
        ),
        ("get away with",),
    ),
    Rule(
        C.NON_VIOLENT_CRIMES,
        "non_violent_crimes",
        0.7,
        _rx(
            rf"\b{REQ}\b{_gap(25)}\bcommit(?:ting)? (?:a |an )?(?:\w+ )?(?:fraud|perjury|burglary|identity theft|"
            r"tax evasion|vandalism|arson|robbery|crimes?)\b"
        ),
        ("commit",),
        DEFENSIVE,
    ),
    Rule(
        C.NON_VIOLENT_CRIMES,
        "cybercrime",
        0.7,
        _rx(
            rf"\b{WRITE}\b{_gap(25)}\b(?:program|script|tool|app|application|bot|software|code|algorithm)\b "
            r"(?:that|which|to) (?:can |will |could )?(?:hack|steal|harvest|spy on|crack passwords|"
            r"bypass (?:security|authentication|antivirus)|evade (?:antivirus|detection)|infect|spread malware|"
            r"launch (?:a )?ddos)\b"
        ),
        ("hack", "steal", "harvest", "spy on", "crack passwords", "bypass", "evade", "infect", "malware", "ddos"),
        DEFENSIVE,
    ),
    *(
        Rule(
            category,
            category.value,
            0.7,
            _rx(
                rf"\b{WRITE}\b{_gap(30)}\b{MEDIUM}s? (?:that|which|to) (?:promotes?|glorif(?:y|ies)|encourages?|"
                rf"incites?|normali[sz]es?|romantici[sz]es?)\b{_gap(25)}\b(?:{harm})\b"
            ),
            ("promot", "glorif", "encourag", "incite", "normali", "romantici"),
            DEFENSIVE,
        )
        for category, harm in (
            (C.VIOLENT_CRIMES, "violence|terrorism|gang violence|genocide|extremism|animal cruelty|mass shootings?"),
            (C.SELF_HARM, "self-harm|suicide|eating disorders?|anorexia|bulimia"),
            (C.NON_VIOLENT_CRIMES, "drug use|illegal drugs|drunk driving|dangerous behaviou?rs?|criminal behaviou?r"),
            (C.HATE, "racism|hatred|discrimination|hate speech|antisemitism|islamophobia"),
            (C.SEX_CRIMES, "sexual assault|rape|sexual violence|sexual harassment"),
        )
    ),
)

INSTRUMENT = _rx(r"\s+calorimet")  # "make a bomb calorimeter"
# Words in quotation marks inside a longer text are reported, not said: "statements like 'X are
# scum' are hurtful", a moderator pasting a message. Such a hit flags (for review) and never blocks
# on the rule alone.
QUOTED = re.compile(r'"[^"\n]{1,400}"|“[^”\n]{1,400}”')
QUOTED_MAX = 0.6

PREFILTERED: dict[int, Prefiltered] = {id(r): Prefiltered(r.pattern) for r in RULES}


class HarmfulScanner:
    """Lexicon and pattern scanner; each hit names its Llama Guard category. A hit's score
    depends on its whole sentence and on quotation marks around it, beyond ``max_span``."""

    name = SCANNER

    def __init__(self, categories: frozenset[Category] | set[Category] | None = None) -> None:
        self.rules = tuple(r for r in RULES if categories is None or r.category in categories)
        self.max_span = max((r.span for r in self.rules), default=0)  # for the stream redactor
        self._gated = GatedPatterns(
            [PREFILTERED[id(r)] for r in self.rules], [[g.lower() for g in r.gate] for r in self.rules]
        )

    def candidates(self, text: str) -> list[Hit]:
        """Every match at its rule's weight, before its sentence is read: what ``scan`` can
        find in any text that goes on from this one, each at the highest score it can have
        there. The stream redactor holds text on these while the sentence is still coming."""
        rules = self.rules
        return [
            Hit(rules[i].category, rules[i].entity, SCANNER, m.start(), m.end(), rules[i].weight)
            for i, m in self._gated.matches(text)
        ]

    def scan(self, text: str) -> list[Hit]:
        hits = []
        quotes: list[tuple[int, int]] | None = None
        for i, m in self._gated.matches(text):
            rule = self.rules[i]
            if rule.exclude is not None and _excluded(rule.exclude, text, m.start(), m.end()):
                continue
            span = _weapon_span(rule, text, m) if rule.category is C.INDISCRIMINATE_WEAPONS else m.span()
            if span is None:
                continue
            start, end = span
            weight = rule.weight
            if quotes is None:
                body = text.strip()
                quotes = [q.span() for q in QUOTED.finditer(text) if q.group() != body]
            if any(a < start and end < b for a, b in quotes):
                weight = min(weight, QUOTED_MAX)
            hits.append(Hit(rule.category, rule.entity, SCANNER, start, end, weight))
        return hits


@lru_cache(maxsize=64)
def harm_scanner(categories: frozenset[Category]) -> HarmfulScanner:
    """A harm scanner for some S1-S14 categories, built once (its gate regex takes ~1 ms)."""
    return HarmfulScanner(categories)


def _weapon_span(rule: Rule, text: str, m: re.Match[str]) -> tuple[int, int] | None:
    """Where a weapons rule matches from ``m`` on once the harmless "bombs" near it are blanked
    out ("a bath bomb and a pipe bomb" still matches, "a bath bomb" does not); None when nothing
    is left or the weapon is an instrument ("bomb calorimeter")."""
    start, end = m.span()
    near = text[start : start + rule.span]
    if NOT_WEAPON.search(near, 0, end - start + 24):  # "bomb the test" runs on past the match
        left = rule.pattern.search(NOT_WEAPON.sub(lambda n: " " * len(n.group()), near))
        if left is None or left.start() >= end - start:
            return None
        start, end = start + left.start(), start + left.end()
    return None if INSTRUMENT.match(text, end) else (start, end)


def _excluded(rx: re.Pattern[str], text: str, start: int, end: int) -> bool:
    """True when the exclusion pattern occurs in the sentence around the match."""
    left = (
        max(text.rfind(".", 0, start), text.rfind("\n", 0, start), text.rfind("?", 0, start), text.rfind("!", 0, start))
        + 1
    )
    ends = [i for i in (text.find(".", end), text.find("\n", end), text.find("?", end), text.find("!", end)) if i != -1]
    right = min(ends) if ends else len(text)
    return rx.search(text, left, right) is not None
