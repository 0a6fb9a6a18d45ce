"""A student's solution with a bug: is_palindrome does not ignore case or punctuation."""


def add(a, b):
    return a + b


def is_palindrome(text):
    return text == text[::-1]


def word_count(text):
    return len(text.split())
