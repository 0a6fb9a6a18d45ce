"""A student's solution: the module the tests import."""


def add(a, b):
    return a + b


def is_palindrome(text):
    letters = [c.lower() for c in text if c.isalnum()]
    return letters == letters[::-1]


def word_count(text):
    return len(text.split())
