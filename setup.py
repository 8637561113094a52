from setuptools import find_packages, setup

setup(
    name="videossl",
    version="0.1.0",
    description="Self-supervised learning on video, audio and images: every method in one place.",
    packages=find_packages(include=["videossl", "videossl.*"]),
    python_requires=">=3.10",
    install_requires=[],  # pinned in requirements.txt, installed by `make`
    entry_points={"console_scripts": ["videossl=videossl.cli:main"]},
)
