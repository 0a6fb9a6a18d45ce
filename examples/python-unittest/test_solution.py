"""The exercise's tests. Run as the entry with a test's name as argument,
`python3 test_solution.py TestSolution.test_add` runs that one test: exit 0 when
it passes, 1 (a runtime_error, with the traceback on stderr) when it fails."""

import unittest

from solution import add, is_palindrome, word_count


class TestSolution(unittest.TestCase):
    def test_add(self):
        self.assertEqual(add(2, 3), 5)

    def test_palindrome_plain(self):
        self.assertTrue(is_palindrome("level"))
        self.assertFalse(is_palindrome("runbox"))

    def test_palindrome_sentence(self):
        self.assertTrue(is_palindrome("A man, a plan, a canal: Panama"))

    def test_word_count(self):
        self.assertEqual(word_count("  one two\tthree\n"), 3)


if __name__ == "__main__":
    unittest.main()
