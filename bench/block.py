"""Replaces a generated block of bench/RESULTS.md: the text between `<!-- NAME:begin (SCRIPT
writes this block) -->` and `<!-- NAME:end -->`, which the prose around it never touches.

usage: python3 bench/block.py RESULTS.md NAME SCRIPT NEW.md HEADING
Without the markers yet, the block goes right under HEADING (a whole line), or at the end under
a new HEADING when there is none.
"""
import sys


def main():
    path, name, script, new, heading = sys.argv[1:6]
    block = open(new).read()
    text = open(path).read()
    begin, end = "<!-- %s:begin (%s writes this block) -->\n" % (name, script), "<!-- %s:end -->\n" % name
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + begin + block + end + rest.split(end, 1)[1]
    elif heading + "\n" in text:
        head, rest = text.split(heading + "\n", 1)
        text = head + heading + "\n\n" + begin + block + end + rest
    else:
        text += "\n" + heading + "\n\n" + begin + block + end
    open(path, "w").write(text)


if __name__ == "__main__":
    main()
