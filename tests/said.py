"""What the command line said, with each message whole again: a message past 80 columns goes on, indented two
spaces, on the next line (riskmin._runs._report.message_lines), and a test reads it as one line."""

import re


def unwrapped(text: str) -> str:
    return re.sub(r"\n  (?=\S)", " ", text)
