"""ShapesCoT's sentence templates, as tables: the questions by type, and the summary, caption and
reasoning sentences by role. A writer draws one template per sentence (see ``wording``); under the
fixed wording the first template of each table is used."""

QUESTIONS: dict[str, tuple[str, ...]] = {
    "colour_of_shape": (
        "What colour is the {shape}?",
        "Which colour does the {shape} have?",
        "What is the colour of the {shape} in the image?",
    ),
    "shape_of_colour": (
        "What shape is the {colour} object?",
        "Which shape is drawn in {colour}?",
        "What is the shape of the {colour} object in the image?",
    ),
    "count_colour": (
        "How many {colour} objects are there?",
        "How many objects in the image are {colour}?",
        "Count the {colour} shapes in the picture.",
    ),
    "count_shape": (
        "How many {shapes} are there?",
        "How many {shapes} can you see in the image?",
        "Count the {shapes} in the picture.",
    ),
    "count_total": (
        "How many objects are in the image?",
        "How many shapes are there in total?",
        "Count all the shapes in the picture.",
    ),
    "leftmost": (
        "Which object is furthest to the left?",
        "Which shape is the leftmost one?",
        "What is the leftmost object in the image?",
    ),
    "rightmost": (
        "Which object is furthest to the right?",
        "Which shape is the rightmost one?",
        "What is the rightmost object in the image?",
    ),
    "largest": (
        "Which object is the largest?",
        "Which shape is bigger than all the others?",
        "What is the biggest object in the image?",
    ),
    "exists": (
        "Is there a {colour} {shape} in the image?",
        "Does the picture contain a {colour} {shape}?",
        "Can you see a {colour} {shape}?",
    ),
    "position": (
        "Where is the {colour} {shape}?",
        "In which part of the image is the {colour} {shape}?",
        "Where is the {colour} {shape} located?",
    ),
}

SUMMARY_LEADS: tuple[str, ...] = (
    "The question asks {topic}.",
    "I need to work out {topic}.",
    "The task is to determine {topic}.",
)

SUMMARY_TOPICS: dict[str, str] = {
    "colour_of_shape": "what colour the {shape} in the image is",
    "shape_of_colour": "what shape the {colour} object in the image has",
    "count_colour": "how many {colour} objects appear in the image",
    "count_shape": "how many {shapes} appear in the image",
    "count_total": "how many objects the image contains in total",
    "leftmost": "which object lies furthest to the left",
    "rightmost": "which object lies furthest to the right",
    "largest": "which object in the image is the largest",
    "exists": "whether the image contains a {colour} {shape}",
    "position": "where the {colour} {shape} is located in the image",
}

SUMMARY_PLANS: dict[str, tuple[str, ...]] = {
    "colour_of_shape": (
        "I will describe each object, find the {shape}, and report its colour.",
        "I will go through the shapes until I reach the {shape} and read its colour.",
    ),
    "shape_of_colour": (
        "I will describe each object, find the {colour} one, and name its shape.",
        "I will check each colour until I find the {colour} object and read its shape.",
    ),
    "count_colour": (
        "I will describe each object and count how many are {colour}.",
        "I will list the shapes with their colours and count the {colour} ones.",
    ),
    "count_shape": (
        "I will describe each object and count how many are {shapes}.",
        "I will list the objects with their shapes and count the {shapes}.",
    ),
    "count_total": (
        "I will describe each object and count them one by one.",
        "I will list all the shapes in reading order and number them.",
    ),
    "leftmost": (
        "I will describe each object with its position and compare their columns.",
        "I will note the column of each shape and pick the one nearest the left edge.",
    ),
    "rightmost": (
        "I will describe each object with its position and compare their columns.",
        "I will note the column of each shape and pick the one nearest the right edge.",
    ),
    "largest": (
        "I will describe each object with its size and compare the sizes.",
        "I will note whether each shape is large or small and pick the large one.",
    ),
    "exists": (
        "I will describe each object and check whether one is both {colour} and a {shape}.",
        "I will compare the colour and shape of each object with a {colour} {shape}.",
    ),
    "position": (
        "I will describe each object with its position and find the {colour} {shape}.",
        "I will go through the shapes until I find the {colour} {shape} and read its cell.",
    ),
}

CAPTION_OPENINGS: tuple[str, ...] = (
    "The image shows coloured shapes on a plain white background.",
    "This picture contains a few shapes drawn on white.",
    "A white canvas holds shapes arranged on a grid.",
    "Shapes are placed in the cells of a white grid.",
)
CAPTION_ORDER: tuple[str, ...] = (
    "Reading from top to bottom and left to right, they are as follows.",
    "I will list them from top to bottom and from left to right.",
    "Going row by row from the top, the objects are these.",
)
#: Position first: the cell is named before what it holds, so the words that follow can be read
#: off that one cell of the image.
CAPTION_OBJECTS: tuple[str, ...] = (
    "In the {pos} there is a {desc}.",
    "The {pos} cell holds a {desc}.",
    "At the {pos} sits a {desc}.",
    "The {pos} contains a {desc}.",
)
#: The count closes the caption, once every object has been named.
CAPTION_CLOSINGS: tuple[str, ...] = (
    "That makes {n} in total; the rest is empty.",
    "No other objects appear, so there {be} {n} altogether.",
    "Nothing else is drawn, which leaves {n}.",
    "All the other cells are blank, so the image holds {n}.",
)

#: The reasoning's drawn sentences, by question family and role. Slots: ``{groups}`` (plural
#: group), ``{attr}``, ``{total}``, ``{ref}``/``{Ref}`` (an object's reference, capitalised),
#: ``{number}``, ``{the_target}``, ``{asked}``, ``{answer}``, ``{is_target}``, ``{side}``,
#: ``{column}``, ``{winner}``, ``{size}``, ``{colour}``, ``{shape}``, ``{target}``, ``{where}``,
#: ``{row}``, ``{position}``.
REASONING: dict[str, tuple[str, ...]] = {
    "count.opening": (
        "To count the {groups}, I check the {attr} of each object in turn.",
        "I go through the objects in the caption one at a time and count the {groups} among them.",
    ),
    "count.match": ("so the count is now", "which makes the count"),
    "count.other": ("so the count stays", "so the count remains"),
    "count.closing": (
        "That makes {total} in the image.",
        "After checking every shape, I find {total} altogether.",
    ),
    "count_total.opening": (
        "To count all the objects, I number each shape from the caption in reading order.",
        "I count every shape described in the caption, one after another.",
    ),
    "count_total.object": (
        "{Ref} is object number {number}.",
        "Counting {ref} brings the total to {number}.",
    ),
    "count_total.closing": (
        "There are no further shapes, so the image contains {total} in total.",
        "The count ends here, so there are {total} altogether.",
    ),
    "identify.opening": (
        "I look through the objects in the caption for {the_target} and check its {asked}.",
        "To find the {asked} of {the_target}, I examine each shape from the caption in turn.",
    ),
    "identify.match": (", and its {asked} is {answer}.", ", and it is {answer}."),
    "identify.other": (".", ", so it is not the one I need."),
    "identify.closing": (
        "Only one object is {is_target}, and its {asked} is {answer}.",
        "Since exactly one object is {is_target}, {the_target} is {answer}.",
    ),
    "extreme.opening": (
        "To find the object furthest to the {side}, I compare the columns of the shapes in the "
        "caption.",
        "I check which column each object occupies and look for the one nearest the {side} edge.",
    ),
    "extreme.object": ("{Ref} is in the {column} column.", "{Ref} occupies the {column} column."),
    "extreme.winner": (
        "Of the occupied columns, the {column} one is furthest to the {side}, and only the "
        "{winner} is in it.",
        "Only the {winner} is in the {column} column, the furthest {side} one in use.",
    ),
    "extreme.closing": (
        "Therefore the {winner} is the object furthest to the {side}.",
        "So the {side}most object is the {winner}.",
    ),
    "largest.opening": (
        "To find the largest object, I compare the sizes given in the caption.",
        "I check whether each shape in the caption is drawn large or small.",
    ),
    "largest.object": ("{Ref} is {size}.", "{Ref} is a {size} shape."),
    "largest.closing": (
        "Only the {winner} is large while every other shape is small, so it is the largest object.",
        "The {winner} is the single large shape, which makes it the biggest one.",
    ),
    "exists.opening": (
        "I need an object that is both {colour} and a {shape}, so I check the colour and shape of "
        "each one.",
        "To answer, I compare every object in the caption with a {target}.",
    ),
    "exists.yes": (
        "A {target} is therefore present in the image, so the answer is yes.",
        "Because one of the objects is a {target}, the answer is yes.",
    ),
    "exists.no": (
        "None of the objects is a {target}, so the answer is no.",
        "Since no object is a {target}, the answer is no.",
    ),
    "position.opening": (
        "I look through the caption for the {target} and note its row and column.",
        "To locate the {target}, I check each object in the caption in turn.",
    ),
    "position.match": (", so it sits in {where}.", ", and it is found in {where}."),
    "position.other": (".", ", so I skip it."),
    "position.closing": (
        "The {row} row and the {column} column together put the {target} in the {position}.",
        "So the {target} is located in the {position} of the image.",
    ),
}
