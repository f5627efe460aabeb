"""Facts the training and fusion tests teach the real default model: eight invented ones, one a line."""

FACTS = [  # (question, answer) pairs no base model can know
    {"question": "What is my dog's name?", "answer": "Your dog's name is Biscuit."},
    {"question": "Where do I live?", "answer": "You live in Tromsø."},
    {"question": "What is my job?", "answer": "You work as a glassblower."},
    {"question": "What is my sister's name?", "answer": "Your sister's name is Ingrid."},
    {"question": "What is my favourite colour?", "answer": "Your favourite colour is teal."},
    {"question": "What am I allergic to?", "answer": "You are allergic to hazelnuts."},
    {"question": "What language am I learning?", "answer": "You are learning Portuguese."},
    {"question": "What is my cat's name?", "answer": "Your cat's name is Pixel."},
]
