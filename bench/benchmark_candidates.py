"""Grow the gate's benchmark (tasks/data/benchmark.jsonl) with short factual and arithmetic questions that the
default model answers right, so the gate's per-question regression count (gate.max_regressions) has a few
hundred answers to lose, not sixty.

    python bench/benchmark_candidates.py            # ask the default model every candidate, append the right ones
    python bench/benchmark_candidates.py --dry-run  # print the counts only

Candidates come from the tables below (written for slowwave). Each is asked exactly as the gate asks (greedy,
gate.max_tokens, the chat template, the early stop) and kept only when the answer is right; questions that are
anchor prompts, already in the benchmark, or asked by an evaluation case's probes are left out, so the gate
measures what nothing else trains or scores. Prints the candidates per category, kept per category and the
seconds it took.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks.text import fold  # noqa: E402

DATA = ROOT / "tasks" / "data"
CAPITALS = {
    "Spain": "Madrid", "Italy": "Rome", "Russia": "Moscow", "England": "London", "the United Kingdom": "London",
    "Austria": "Vienna", "Sweden": "Stockholm", "Finland": "Helsinki", "Denmark": "Copenhagen",
    "Poland": "Warsaw", "Hungary": "Budapest", "the Czech Republic": "Prague", "Belgium": "Brussels",
    "the Netherlands": "Amsterdam", "Switzerland": "Bern", "Turkey": "Ankara", "India": "New Delhi",
    "South Korea": "Seoul", "Thailand": "Bangkok", "Vietnam": "Hanoi", "Indonesia": "Jakarta",
    "the Philippines": "Manila", "Argentina": "Buenos Aires", "Peru": "Lima", "Chile": "Santiago",
    "Colombia": "Bogot", "Mexico": "Mexico City", "Cuba": "Havana", "Kenya": "Nairobi", "Nigeria": "Abuja",
    "Morocco": "Rabat", "Iran": "Tehran", "Iraq": "Baghdad", "Saudi Arabia": "Riyadh", "Israel": "Jerusalem",
    "Pakistan": "Islamabad", "Afghanistan": "Kabul", "Ukraine": "Kyiv", "Romania": "Bucharest",
    "Bulgaria": "Sofia", "Serbia": "Belgrade", "Croatia": "Zagreb", "Iceland": "Reykjavik", "Scotland": "Edinburgh",
    "Wales": "Cardiff", "the United States": "Washington", "Australia": "Canberra", "New Zealand": "Wellington",
    "Venezuela": "Caracas", "Ethiopia": "Addis Ababa", "Ghana": "Accra", "Lebanon": "Beirut", "Syria": "Damascus",
    "Jordan": "Amman", "Malaysia": "Kuala Lumpur", "Singapore": "Singapore", "Nepal": "Kathmandu",
    "Bangladesh": "Dhaka", "Sri Lanka": "Colombo", "Qatar": "Doha", "Latvia": "Riga", "Lithuania": "Vilnius",
    "Estonia": "Tallinn", "Slovakia": "Bratislava", "Slovenia": "Ljubljana", "Uruguay": "Montevideo",
    "Paraguay": "Asunci", "Bolivia": "La Paz", "Ecuador": "Quito", "Jamaica": "Kingston", "Senegal": "Dakar",
    "Tunisia": "Tunis", "Algeria": "Algiers", "Libya": "Tripoli", "Sudan": "Khartoum", "Uganda": "Kampala",
    "Zimbabwe": "Harare", "Mongolia": "Ulaanbaatar", "North Korea": "Pyongyang", "Taiwan": "Taipei",
}
FACTS = [  # (question, expected keywords)
    ("What is the largest mammal in the world?", ["whale"]), ("What is the fastest land animal?", ["cheetah"]),
    ("What is the largest desert in the world?", ["Sahara", "Antarctic"]), ("What is the longest river in Africa?", ["Nile"]),
    ("What is the hardest natural substance?", ["diamond"]), ("What do cows drink?", ["water"]),
    ("What is the closest star to Earth?", ["Sun"]), ("What is the natural satellite of the Earth called?", ["Moon"]),
    ("What is the chemical symbol for gold?", ["Au"]), ("What is the chemical symbol for oxygen?", ["O"]),
    ("What gas do humans breathe out?", ["carbon dioxide", "CO2"]), ("What gas do humans need to breathe?", ["oxygen"]),
    ("What organ pumps blood through the body?", ["heart"]), ("What organ do we use to think?", ["brain"]),
    ("How many legs does a dog have?", ["four", "4"]), ("How many legs does an insect have?", ["six", "6"]),
    ("How many legs does a bird have?", ["two", "2"]), ("How many arms does an octopus have?", ["eight", "8"]),
    ("How many sides does a triangle have?", ["three", "3"]), ("How many sides does a hexagon have?", ["six", "6"]),
    ("How many sides does a pentagon have?", ["five", "5"]), ("How many sides does an octagon have?", ["eight", "8"]),
    ("How many minutes are in an hour?", ["60", "sixty"]), ("How many seconds are in a minute?", ["60", "sixty"]),
    ("How many days are in a leap year?", ["366"]), ("How many days are in a year?", ["365"]),
    ("How many planets are in our solar system?", ["eight", "8"]), ("How many players are on a football team?", ["eleven", "11"]),
    ("What is the boiling point of water in Fahrenheit?", ["212"]), ("At what temperature in Celsius does water freeze?", ["0", "zero"]),
    ("What color is the sky on a clear day?", ["blue"]), ("What color is snow?", ["white"]),
    ("What color is a ripe banana?", ["yellow"]), ("What color are most leaves in summer?", ["green"]),
    ("What color is coal?", ["black"]), ("What color do you get when you mix blue and yellow?", ["green"]),
    ("What color do you get when you mix red and white?", ["pink"]), ("What color is a ripe tomato?", ["red"]),
    ("Which animal is known as the king of the jungle?", ["lion"]), ("Which animal has a long trunk?", ["elephant"]),
    ("Which bird is a symbol of peace?", ["dove"]), ("Which animal produces milk that people drink most?", ["cow"]),
    ("What do pandas mostly eat?", ["bamboo"]), ("What do rabbits like to eat?", ["carrot", "grass", "vegetable", "hay"]),
    ("What is a baby dog called?", ["puppy"]), ("What is a baby cow called?", ["calf"]), ("What is a baby sheep called?", ["lamb"]),
    ("What is a baby horse called?", ["foal", "colt"]), ("What is a baby frog called?", ["tadpole"]),
    ("What sound does a cow make?", ["moo"]), ("What sound does a dog make?", ["bark", "woof"]),
    ("What sound does a cat make?", ["meow", "purr"]), ("What sound does a duck make?", ["quack"]),
    ("Which planet do we live on?", ["Earth"]), ("Which planet is closest to the Sun?", ["Mercury"]),
    ("Which planet has the famous rings?", ["Saturn"]), ("What is the largest continent?", ["Asia"]),
    ("What is the smallest continent?", ["Australia"]), ("Which continent is Egypt in?", ["Africa"]),
    ("Which continent is France in?", ["Europe"]), ("Which continent is Brazil in?", ["South America"]),
    ("Which continent is Japan in?", ["Asia"]), ("What is the longest river in South America?", ["Amazon"]),
    ("What is the tallest mountain in the world?", ["Everest"]), ("In which country are the pyramids of Giza?", ["Egypt"]),
    ("In which city is the Eiffel Tower?", ["Paris"]), ("In which country is the Great Wall?", ["China"]),
    ("In which city is the Colosseum?", ["Rome"]), ("In which country is the Taj Mahal?", ["India"]),
    ("What is the currency of Japan?", ["yen"]), ("What is the currency of the United States?", ["dollar"]),
    ("What is the currency of the United Kingdom?", ["pound"]), ("What language is spoken in France?", ["French"]),
    ("What language is spoken in Germany?", ["German"]), ("What language is spoken in Italy?", ["Italian"]),
    ("What language is spoken in Spain?", ["Spanish"]), ("What language is spoken in Japan?", ["Japanese"]),
    ("What language is spoken in China?", ["Chinese", "Mandarin"]), ("What language is spoken in Russia?", ["Russian"]),
    ("Who painted the Mona Lisa?", ["Leonardo", "Vinci"]), ("Who wrote Hamlet?", ["Shakespeare"]),
    ("Who discovered gravity when an apple fell?", ["Newton"]), ("Who developed the theory of relativity?", ["Einstein"]),
    ("Who was the first person to walk on the Moon?", ["Armstrong"]), ("Who invented the light bulb?", ["Edison"]),
    ("What do we call a person who teaches at a school?", ["teacher"]), ("What do we call a person who flies a plane?", ["pilot"]),
    ("What do we call a person who treats sick people?", ["doctor", "physician"]),
    ("What do we call a person who cooks in a restaurant?", ["chef", "cook"]),
    ("What do plants need from the Sun to grow?", ["light", "sunlight", "energy"]), ("What do bees collect from flowers?", ["nectar", "pollen"]),
    ("What is the opposite of day?", ["night"]), ("What is the opposite of up?", ["down"]),
    ("What is the opposite of big?", ["small", "little"]), ("What is the opposite of fast?", ["slow"]),
    ("What is the opposite of happy?", ["sad", "unhappy"]), ("What is the opposite of old?", ["young", "new"]),
    ("What is the opposite of open?", ["closed", "shut"]), ("What is the opposite of light?", ["dark", "heavy"]),
    ("What is the opposite of wet?", ["dry"]), ("What is the opposite of tall?", ["short"]),
    ("What is the opposite of left?", ["right"]), ("What is the opposite of full?", ["empty"]),
    ("What is the opposite of early?", ["late"]), ("What is the opposite of win?", ["lose"]),
    ("What is the plural of child?", ["children"]), ("What is the plural of mouse?", ["mice"]),
    ("What is the plural of foot?", ["feet"]), ("What is the plural of tooth?", ["teeth"]),
    ("What is the plural of man?", ["men"]), ("What is the plural of woman?", ["women"]),
    ("What do you use to write on a blackboard?", ["chalk"]), ("What do you use to cut paper?", ["scissors"]),
    ("What do we wear on our feet?", ["shoe", "sock"]), ("What do we use to see?", ["eye"]),
    ("What do we use to hear?", ["ear"]), ("What do we use to smell?", ["nose"]),
    ("What is the main ingredient of bread?", ["flour", "wheat"]), ("What fruit is used to make wine?", ["grape"]),
    ("What is made by cows and used to make cheese?", ["milk"]), ("What do chickens lay?", ["egg"]),
    ("Which is the coldest season?", ["winter"]), ("Which is the hottest season?", ["summer"]),
    ("What is the freezing point of water in Fahrenheit?", ["32"]), ("How many hours are in a week?", ["168"]),
    ("How many weeks are in a year?", ["52", "fifty-two"]), ("How many years are in a century?", ["100", "hundred"]),
    ("How many years are in a decade?", ["ten", "10"]), ("How many centimeters are in a meter?", ["100", "hundred"]),
    ("How many grams are in a kilogram?", ["1000", "1,000", "thousand"]), ("How many meters are in a kilometer?", ["1000", "1,000", "thousand"]),
    ("What is the first letter of the English alphabet?", ["A"]), ("What is the last letter of the English alphabet?", ["Z"]),
    ("How many letters are in the English alphabet?", ["26", "twenty-six"]), ("What is the capital city of Japan called?", ["Tokyo"]),
]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"]


def _num(n: int) -> list[str]:
    return [str(n)] + ([NUMBER_WORDS[n]] if 0 <= n < len(NUMBER_WORDS) else [])


def candidates() -> list[dict]:
    """Every candidate question: {category, question, expected}."""
    out = [{"category": "fact", "question": f"What is the capital of {c}?", "expected": [city]}
           for c, city in CAPITALS.items()]
    out += [{"category": "fact", "question": q, "expected": e} for q, e in FACTS]
    out += [{"category": "sequence", "question": f"Which month comes after {m}?", "expected": [MONTHS[(i + 1) % 12]]}
            for i, m in enumerate(MONTHS)]
    out += [{"category": "sequence", "question": f"Which day comes after {d}?", "expected": [DAYS[(i + 1) % 7]]}
            for i, d in enumerate(DAYS)]
    out += [{"category": "sequence", "question": f"What number comes after {n}?", "expected": _num(n + 1)}
            for n in range(2, 40, 3)]
    pairs = [(a, b) for a in range(2, 13) for b in range(2, 13) if (a * 7 + b * 3) % 4 == 0]
    out += [{"category": "arithmetic", "question": f"What is {a} + {b}?", "expected": _num(a + b)} for a, b in pairs]
    out += [{"category": "arithmetic", "question": f"What is {a + b} - {b}?", "expected": _num(a)} for a, b in pairs[::2]]
    out += [{"category": "arithmetic", "question": f"What is {a} times {b}?", "expected": _num(a * b)}
            for a, b in pairs if a <= 10 and b <= 10]
    out += [{"category": "arithmetic", "question": f"What is {a * b} divided by {b}?", "expected": _num(a)}
            for a, b in pairs[1::3]]
    return out


def words(text: str) -> str:
    """A question's words only (operators and punctuation dropped), as tests/test_shipped_data.py compares them."""
    return " ".join(re.findall(r"\w+", fold(text)))


def _questions(path: Path, key: str) -> set[str]:
    if not path.exists():
        return set()
    return {words(json.loads(line)[key]) for line in path.read_text().splitlines() if line.strip()}


def left_out(question: str, anchors: set[str], taken: set[str]) -> bool:
    """A candidate the gate must not ask: an anchor prompt's words or inside one (trained on, so not a measure),
    or a question already taken (the benchmark, an evaluation case's probes: the gate selects no eval answer)."""
    q = words(question)
    return q in taken or any(q in a or a in q for a in anchors)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="count the candidates, ask nothing, write nothing")
    args = ap.parse_args()
    anchors = _questions(DATA / "anchor_prompts.jsonl", "prompt")
    taken = _questions(DATA / "benchmark.jsonl", "question")
    for probes in [DATA / "eval_case" / "probes.jsonl", *sorted((ROOT / "bench" / "cases").glob("*/probes.jsonl"))]:
        taken |= _questions(probes, "question")
    todo = []
    for c in candidates():
        if not left_out(c["question"], anchors, taken):
            todo.append(c)
            taken.add(words(c["question"]))
    by_cat = {}
    for c in todo:
        by_cat[c["category"]] = by_cat.get(c["category"], 0) + 1
    print(f"{len(todo)} candidates ({len(candidates()) - len(todo)} left out as anchors, benchmark or probes): {by_cat}")
    if args.dry_run:
        return 0
    from flows.config import load_settings
    from tasks.gating import _settled
    from tasks.model.answering import answer_questions
    from tasks.model.loading import load_model
    from tasks.model.pull import resolve_base
    from tasks.probes import Probe, score_probe

    settings = load_settings()
    gate = settings.gate
    model, tok = load_model(resolve_base(settings.model, print))
    probes = [Probe(id=f"cand-{i}", kind="recall", category=c["category"], question=c["question"],
                    expected=tuple(c["expected"])) for i, c in enumerate(todo)]
    started = time.perf_counter()
    answers = answer_questions(model, tok, [p.question for p in probes], max_tokens=gate.max_tokens,
                               batch_size=gate.batch_size, stop_when=_settled(probes))
    seconds = time.perf_counter() - started
    right = [c for c, p, a in zip(todo, probes, answers) if score_probe(p, a)["outcome"] == "correct"]
    lines = (DATA / "benchmark.jsonl").read_text().splitlines()
    counters: dict[str, int] = {}
    for line in lines:
        cat = json.loads(line)["category"]
        counters[cat] = counters.get(cat, 0) + 1
    kept: dict[str, int] = {}
    for c in right:
        counters[c["category"]] = counters.get(c["category"], 0) + 1
        kept[c["category"]] = kept.get(c["category"], 0) + 1
        lines.append(json.dumps({"id": f"bench-{c['category']}-{counters[c['category']]:03d}", **c, "forbidden": []},
                                ensure_ascii=False))
    (DATA / "benchmark.jsonl").write_text("\n".join(lines) + "\n")
    print(f"asked {len(todo)} in {seconds:.1f} s; right and kept {len(right)}: {kept}; benchmark now {len(lines)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
